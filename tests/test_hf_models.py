"""Hugging Face `transformers` models as their users write them (issue 16): tiny configs built
in the test (no downloads), trained on their own loss with dict inputs, GPT-2 with its cache
output, and a DataLoader of dicts with the labels inside. References are plain torch/HF calls."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import kompile as kp  # noqa: E402

IDS = np.random.default_rng(0).integers(0, 40, (32, 8)).astype(np.int64)


def _gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                                  bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def _bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=16, num_labels=3,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return transformers.BertForSequenceClassification(cfg)


def test_gpt2_trains_on_its_own_loss_and_drops_its_cache():
    module = _gpt2()
    with torch.no_grad():  # the reference: HF's own loss on the whole data, eval mode
        module.eval()
        ref = float(module(input_ids=torch.from_numpy(IDS), labels=torch.from_numpy(IDS)).loss)
    model = kp.Model(module).compile("adam")
    x = {"input_ids": IDS, "labels": IDS}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = model.evaluate(x, batch_size=32, verbose=0)
        history = model.fit(x, batch_size=8, epochs=3, verbose=0).history
        out = model.predict({"input_ids": IDS}, batch_size=8, verbose=0)
    assert first == pytest.approx(ref, rel=1e-5)
    assert history["loss"][-1] < history["loss"][0]
    assert list(out) == ["logits"] and out["logits"].shape == (32, 8, 40)
    assert any("'cache'" in str(w.message) and "left out" in str(w.message) for w in caught)


def test_bert_dataloader_of_dicts_with_labels_inside():
    labels = np.arange(32, dtype=np.int64) % 3
    rows = [{"input_ids": torch.from_numpy(IDS[i]),
             "attention_mask": torch.ones(8, dtype=torch.int64),
             "labels": torch.tensor(labels[i])} for i in range(32)]
    loader = torch.utils.data.DataLoader(rows, batch_size=8)
    module = _bert()
    with torch.no_grad():
        module.eval()
        ref = np.mean([float(module(**batch).loss) for batch in loader])
    model = kp.Model(module).compile("adam")
    assert model.evaluate(loader, verbose=0) == pytest.approx(ref, rel=1e-5)
    history = model.fit(loader, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


def test_bert_compiled_loss_needs_targets_from_a_dict_loader():
    rows = [{"input_ids": torch.from_numpy(IDS[i])} for i in range(8)]
    loader = torch.utils.data.DataLoader(rows, batch_size=4)
    model = kp.Model(_bert()).compile(
        "adam", kp.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"\(x, y\)"):
        model.fit(loader, verbose=0)
