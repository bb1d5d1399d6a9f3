"""A Hugging Face model trained as its users train it with gradient accumulation and frozen
embeddings (the `transformers` docs' accumulation loop: ``loss / N``, ``backward``, a step
every N batches), built from a tiny config (no download). The reference is that loop in
plain torch; kompile must give the same weights, and the frozen embeddings bit-identical."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import kompile as kp  # noqa: E402

RNG = np.random.default_rng(0)
IDS = RNG.integers(0, 40, (24, 8)).astype(np.int64)
LABELS = (IDS.sum(axis=1) % 3).astype(np.int64)
N, BATCH, LR = 3, 4, 0.1


def _bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=16, num_labels=3,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    module = transformers.BertForSequenceClassification(cfg)
    module.bert.embeddings.requires_grad_(False)  # frozen, as in a fine-tune
    return module


def _reference(module):
    """The HF docs' gradient-accumulation loop, in plain torch."""
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=LR, momentum=0.9)
    module.train()
    for _epoch in range(2):
        for i in range(0, len(IDS), BATCH):
            out = module(input_ids=torch.from_numpy(IDS[i:i + BATCH]),
                         labels=torch.from_numpy(LABELS[i:i + BATCH]))
            (out.loss / N).backward()
            if (i // BATCH + 1) % N == 0:
                opt.step()
                opt.zero_grad()
    return module


def test_bert_accumulation_with_frozen_embeddings():
    module = _bert()
    embeddings = copy.deepcopy(module.bert.embeddings.state_dict())
    reference = _reference(copy.deepcopy(module))
    model = kp.Model(module).compile(
        kp.optimizers.SGD(LR, momentum=0.9, gradient_accumulation_steps=N))
    model.fit({"input_ids": IDS, "labels": LABELS}, batch_size=BATCH, epochs=2,
              shuffle=False, verbose=0)
    assert model.optimizer.iterations == 2 * len(IDS) // BATCH // N
    for name, value in module.bert.embeddings.state_dict().items():
        assert torch.equal(value, embeddings[name]), name
    ours = dict(module.named_parameters())
    for name, value in reference.named_parameters():
        np.testing.assert_allclose(ours[name].detach().numpy(), value.detach().numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    assert any(not torch.equal(ours[n], p) for n, p in _bert().named_parameters()
               if p.requires_grad)
