"""How kompile calls the user's module (kompile.calling): mode flags, Flax's ``rngs``,
dict inputs as keywords, randomness in evaluate/predict, and the messages around the call.

References are independent of kompile: values a module computes from its flags (exact
numbers), NumPy formulas, the module called directly by Flax/torch, and Flax's own MNIST
models (copied from google/flax as fixtures).
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest

import kompile as kp

# ----------------------------------------------------------------------------- fixtures


def _flag_module(backend, flag):
    """Outputs x*0 + 1 when its `flag` parameter means "training", else x*0 + 0."""
    if backend == "jax":
        from flax import nnx

        class Flag(nnx.Module):
            def __init__(self):
                self.w = nnx.Param(np.zeros((1,), np.float32))

            def __call__(self, x, **kw):  # replaced below by a method with the flag's name
                raise AssertionError

        src = (f"def __call__(self, x, {flag}=None):\n"
               f"    on = {flag} if '{flag}' != 'deterministic' else not {flag}\n"
               f"    return x * 0 + self.w * 0 + (1.0 if on else 0.0)\n")
        scope: dict = {}
        exec(src, scope)  # noqa: S102  (a signature with the flag's name)
        Flag.__call__ = scope["__call__"]
        return Flag()
    import torch

    class TFlag(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

    src = (f"def forward(self, x, {flag}=None):\n"
           f"    on = {flag} if '{flag}' != 'deterministic' else not {flag}\n"
           f"    return x * 0 + self.w * 0 + (1.0 if on else 0.0)\n")
    scope = {}
    exec(src, scope)  # noqa: S102
    TFlag.forward = scope["forward"]
    return TFlag()


@pytest.mark.parametrize("flag", ["training", "train", "deterministic"])
def test_mode_flags_are_true_in_training_steps_only(backend, flag):
    x = np.ones((8, 1), np.float32)
    model = kp.Model(_flag_module(backend, flag)).compile("sgd", "mse")
    hist = model.fit(x, np.zeros((8, 1), np.float32), batch_size=4, verbose=0)
    assert hist.history["loss"] == [pytest.approx(1.0)]  # the flag said "training"
    assert model.evaluate(x, np.zeros((8, 1), np.float32), verbose=0) == pytest.approx(0.0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), np.zeros((8, 1)))


def _noise_module(backend, jax_rngs_param=True):
    """Returns standard normal noise of x's shape (fresh per call) in every mode."""
    if backend == "jax":
        import jax
        from flax import nnx

        if jax_rngs_param:
            class Noise(nnx.Module):  # randomness from the rngs kompile passes
                def __init__(self):
                    self.w = nnx.Param(np.zeros((1,), np.float32))

                def __call__(self, x, rngs):
                    return x * 0 + self.w + jax.random.normal(rngs.noise(), x.shape)
        else:
            class Noise(nnx.Module):  # randomness from the module's own nnx.Rngs
                def __init__(self, rngs):
                    self.w = nnx.Param(np.zeros((1,), np.float32))
                    self.rngs = rngs

                def __call__(self, x):
                    return x * 0 + self.w + jax.random.normal(self.rngs.noise(), x.shape)

            return Noise(nnx.Rngs(noise=kp.utils.draw_seed()))
        return Noise()
    import torch

    class TNoise(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x * 0 + self.w + torch.randn_like(x)

    return TNoise()


@pytest.mark.parametrize("source", ["kompile_rngs", "module_rngs"])
def test_predict_draws_fresh_noise_reproducibly(backend, source):
    if backend == "torch" and source == "module_rngs":
        pytest.skip("torch modules draw from torch's global RNG (one case)")
    x = np.zeros((16, 3), np.float32)

    def run(seed):
        kp.utils.set_random_seed(seed)
        model = kp.Model(_noise_module(backend, source == "kompile_rngs"))
        model.compile("sgd", "mse", steps_per_execution=2)  # two batches per call (a scan)
        first = model.predict(x, batch_size=8, verbose=0)
        second = model.predict(x, batch_size=8, verbose=0)
        model.evaluate(x, x, batch_size=8, verbose=0)  # advances the RNG as well
        third = model.predict(x, batch_size=8, verbose=0)
        return first, second, third

    a, b, c = run(0)
    assert np.std(a) > 0.5 and abs(np.mean(a)) < 0.5  # standard normal noise
    assert not np.allclose(a[:8], a[8:])  # each batch of a call draws afresh
    assert not np.allclose(a, b) and not np.allclose(b, c) and not np.allclose(a, c)
    for got, want in zip(run(0), (a, b, c)):  # the same seed repeats the sequence
        np.testing.assert_array_equal(got, want)


def test_module_rng_state_is_written_back_after_predict():
    from flax import nnx

    module = _noise_module("jax", jax_rngs_param=False)
    count = lambda: int(module.rngs.noise.count[...])  # noqa: E731
    before = count()
    kp.Model(module).predict(np.zeros((8, 2), np.float32), batch_size=4, verbose=0)
    assert count() == before + 2  # one draw per batch, as a direct call would advance it
    assert isinstance(module.rngs, nnx.Rngs)


# ----------------------------------------------------------------------------- Flax's MNIST CNNs
def _flax_cnn(tutorial: bool):
    """The CNN of google/flax examples/mnist/train.py (``__call__(self, x, rngs)``) or of the
    NNX MNIST tutorial (docs_nnx/mnist_tutorial.md, ``rngs=None``), copied as they are."""
    from flax import nnx

    class CNN(nnx.Module):
        """A simple CNN model."""

        def __init__(self, rngs: nnx.Rngs):
            self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
            self.batch_norm1 = nnx.BatchNorm(32, rngs=rngs)
            self.dropout1 = nnx.Dropout(rate=0.025)
            self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
            self.batch_norm2 = nnx.BatchNorm(64, rngs=rngs)
            self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
            self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
            self.dropout2 = nnx.Dropout(rate=0.025)
            self.linear2 = nnx.Linear(256, 10, rngs=rngs)

        def __call__(self, x, rngs: nnx.Rngs):
            x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x), rngs=rngs))))
            x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
            x = x.reshape(x.shape[0], -1)  # flatten
            x = nnx.relu(self.dropout2(self.linear1(x), rngs=rngs))
            x = self.linear2(x)
            return x

    if tutorial:
        class TutorialCNN(CNN):
            def __call__(self, x, rngs: nnx.Rngs | None = None):
                x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x),
                                                                          rngs=rngs))))
                x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
                x = x.reshape(x.shape[0], -1)  # flatten
                x = nnx.relu(self.dropout2(self.linear1(x), rngs=rngs))
                x = self.linear2(x)
                return x

        return TutorialCNN(rngs=nnx.Rngs(0))
    return CNN(rngs=nnx.Rngs(0))


@pytest.mark.parametrize("tutorial", [False, True], ids=["examples_mnist", "nnx_tutorial"])
def test_flax_mnist_cnns_train_as_written(tutorial):
    rng = np.random.default_rng(0)
    x = rng.random((16, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 16)

    import jax
    from flax import nnx

    model = kp.Model(_flax_cnn(tutorial), seed=1).compile(
        kp.optimizers.SGD(0.05), kp.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    if tutorial:
        return  # the same layers: one comparison with Flax's own call is enough
    # predict runs the module in eval mode: equal to Flax's own call as its eval_step makes it
    module = model.module
    module.eval()
    graphdef, state = nnx.split(module)
    direct = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x, None))(state, x)
    np.testing.assert_allclose(model.predict(x, batch_size=16, verbose=0), np.asarray(direct),
                               rtol=1e-4, atol=1e-5)


def test_dropout_masks_follow_the_seed():
    """Dropout built without rngs draws from kompile's Rngs: another seed, another run."""
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self):
            self.lin = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
            self.drop = nnx.Dropout(0.5)

        def __call__(self, x, rngs=None):
            return self.lin(self.drop(x, rngs=rngs))

    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = x.sum(1, keepdims=True)

    def losses(seed, spe=1):
        model = kp.Model(Net(), seed=seed).compile("sgd", "mse", steps_per_execution=spe)
        return model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]

    ref = losses(0)
    assert losses(0, spe=4) == pytest.approx(ref, rel=1e-5)  # scan == one by one, same seed
    assert losses(1, spe=4) != pytest.approx(ref, rel=1e-3)  # another seed, other masks


def test_kompile_rng_is_part_of_the_backup(tmp_path):
    """BackupAndRestore restores the key: a resumed run equals an uninterrupted one even
    when the rebuilt model was given another seed."""
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self):
            self.lin = nnx.Linear(4, 1, rngs=nnx.Rngs(0))
            self.drop = nnx.Dropout(0.5)

        def __call__(self, x, rngs):
            return self.lin(self.drop(x, rngs=rngs))

    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = x.sum(1, keepdims=True)

    class Stop(Exception):
        pass

    def run(seed, callbacks):
        model = kp.Model(Net(), seed=seed).compile("sgd", "mse")
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
        return model.get_weights()

    ref = run(5, [])
    stop = kp.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: (_ for _ in ()).throw(Stop)
                                       if e == 0 else None)
    backup = kp.callbacks.BackupAndRestore(tmp_path / "b")
    with pytest.raises(Stop):
        run(5, [backup, stop])
    resumed = run(99, [kp.callbacks.BackupAndRestore(tmp_path / "b")])
    for got, want in zip(resumed, ref):
        np.testing.assert_array_equal(got, want)


def test_seed_checks_and_unused_seed_warns(backend):
    module = _flag_module(backend, "training")
    with pytest.warns(UserWarning, match="takes none, so the seed is unused"):
        kp.Model(module, seed=3)
    with pytest.raises(TypeError, match="`seed` must be None or an int"):
        kp.Model(module, seed="3")


# ----------------------------------------------------------------------------- dict inputs
def _keyword_module(backend):
    """forward(input_ids, attention_mask=None): masked mean of embedded ids (HF style)."""
    table = np.linspace(-1, 1, 10, dtype=np.float32)
    if backend == "jax":
        import jax.numpy as jnp
        from flax import nnx

        class KW(nnx.Module):
            def __init__(self):
                self.table = nnx.Param(table)

            def __call__(self, input_ids, attention_mask=None):
                e = self.table[input_ids]
                m = jnp.ones_like(e) if attention_mask is None else attention_mask
                return (e * m).sum(-1, keepdims=True) / m.sum(-1, keepdims=True)

        return KW()
    import torch

    class TKW(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.tensor(table))

        def forward(self, input_ids, attention_mask=None):
            e = self.table[input_ids]
            m = torch.ones_like(e) if attention_mask is None else attention_mask.to(e.dtype)
            return (e * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True)

    return TKW()


def test_dict_keys_naming_parameters_are_passed_as_keywords(backend):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 10, (12, 5)).astype(np.int32)
    mask = (rng.random((12, 5)) > 0.3).astype(np.float32)
    mask[:, 0] = 1
    table = np.linspace(-1, 1, 10, dtype=np.float32)
    want = ((table[ids] * mask).sum(1) / mask.sum(1))[:, None]
    model = kp.Model(_keyword_module(backend))
    got = model.predict({"input_ids": ids, "attention_mask": mask}, batch_size=4, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # a subset of the parameters is enough (attention_mask keeps its default)
    got = kp.Model(_keyword_module(backend)).predict({"input_ids": ids}, verbose=0)
    np.testing.assert_allclose(got, table[ids].mean(1, keepdims=True), rtol=1e-5)
    model.compile("sgd", "mse")
    loss = model.evaluate({"input_ids": ids, "attention_mask": mask}, np.zeros((12, 1)),
                          verbose=0)
    assert loss == pytest.approx(float(np.mean(want ** 2)), rel=1e-5)


def test_dict_rule_edges():
    """**kwargs-only forward gets keywords; a dict naming no parameter is one argument."""
    import torch

    class Kw(torch.nn.Module):
        def forward(self, **inputs):
            return inputs["a"] * 2 + inputs["b"]

    class Whole(torch.nn.Module):
        def forward(self, batch, training=False):
            return batch["a"] - batch["b"] + (1.0 if training else 0.0)

    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    b = np.ones((3, 2), np.float32)
    np.testing.assert_array_equal(kp.Model(Kw()).predict({"a": a, "b": b}, verbose=0), a * 2 + b)
    np.testing.assert_array_equal(kp.Model(Whole()).predict({"a": a, "b": b}, verbose=0), a - b)


def test_dict_call_errors(backend):
    ids = np.zeros((4, 3), np.int32)
    with pytest.raises(TypeError, match=r"'atention_mask' \(did you mean 'attention_mask'\?\) "
                                        r"do not"):
        kp.Model(_keyword_module(backend)).predict({"input_ids": ids, "atention_mask": ids},
                                                   verbose=0)
    with pytest.raises(TypeError, match=r"requires 'input_ids', which kompile cannot fill: it "
                                        r"calls module\(\*\*x\)"):
        kp.Model(_keyword_module(backend)).predict({"attention_mask": ids}, verbose=0)


def test_a_required_parameter_kompile_cannot_fill_is_named(backend):
    if backend == "jax":
        from flax import nnx

        class Two(nnx.Module):
            def __call__(self, x, mask):
                return x * mask
    else:
        import torch

        class Two(torch.nn.Module):
            def forward(self, x, mask):
                return x * mask
    with pytest.raises(TypeError, match=r"Two\.(__call__|forward)\(x, mask\) requires 'mask', "
                                        "which kompile cannot fill"):
        kp.Model(Two()).predict(np.zeros((4, 2), np.float32), verbose=0)


# ----------------------------------------------------------------------------- messages
def test_first_call_failure_names_module_and_inputs(make_model, backend):
    model = kp.Model(make_model("mlp"))  # 8 features expected
    with pytest.raises(ValueError, match=r"Calling \w+\.(__call__|forward)\(x\) failed "
                                         r"on a batch of `x` = \(8, 5\) float32") as info:
        model.predict(np.zeros((8, 5), np.float32), batch_size=8, verbose=0)
    assert info.value.__cause__ is not None  # the module's own error, chained
    assert type(info.value.__cause__).__name__ in str(info.value)


def test_batchnorm_batch_of_one_hint():
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model = kp.Model(module).compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(9, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="batch of 1 sample.*drop_last=True") as info:
        model.fit(x, np.zeros((9, 4), np.float32), batch_size=8, shuffle=False, verbose=0)
    assert "Expected more than 1 value per channel" in str(info.value.__cause__)


def test_probability_loss_on_logits_warns_once(make_model, backend):
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32) * 10
    y = np.zeros(16, np.int32)
    logits = kp.Model(make_model("linear", n_out=3))
    logits.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="expects probabilities in \\[0, 1\\].*from_logits=True"):
        logits.fit(x, y, batch_size=8, epochs=2, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logits.fit(x, y, batch_size=8, verbose=0)  # once per compile
        probs = kp.Model(make_model("mlp", n_in=4))
        probs.compile("sgd", "sparse_categorical_crossentropy")
        probs.fit(x, y, batch_size=8, verbose=0)  # softmax outputs: no warning


def test_hugging_face_model_trains_on_dict_inputs():
    """A Hugging Face BERT (tiny config, no download) trained on {input_ids, attention_mask}
    equals the same steps written by hand in torch."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=16, num_labels=3,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, (16, 8))
    mask = np.ones((16, 8), np.int64)
    mask[:, 6:] = 0
    y = rng.integers(0, 3, 16)

    def fresh():
        torch.manual_seed(0)
        return transformers.BertForSequenceClassification(cfg)

    module = fresh()
    model = kp.Model(module).compile(
        kp.optimizers.SGD(0.5), kp.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = {"input_ids": ids, "attention_mask": mask}
    model.fit(x, {"logits": y}, batch_size=8, epochs=2, shuffle=False, verbose=0)
    got = model.predict(x, verbose=0)["logits"]

    ref = fresh()  # the hand-written loop
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    ref.train()
    for _ in range(2):
        for s in (slice(0, 8), slice(8, 16)):
            opt.zero_grad()
            out = ref(input_ids=torch.as_tensor(ids[s]), attention_mask=torch.as_tensor(mask[s]))
            torch.nn.functional.cross_entropy(out.logits, torch.as_tensor(y[s])).backward()
            opt.step()
    ref.eval()
    with torch.no_grad():
        want = ref(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask)).logits
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def _two_input_module(backend, wa, wb):
    """out = a @ wa + b @ wb, called as module(a, b) (and `training` filled by kompile)."""
    if backend == "jax":
        from flax import nnx

        class TwoIn(nnx.Module):
            def __init__(self):
                self.wa, self.wb = nnx.Param(wa.copy()), nnx.Param(wb.copy())

            def __call__(self, a, b, training=False):
                return a @ self.wa + b @ self.wb

        return TwoIn()
    import torch

    class TTwoIn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.wa = torch.nn.Parameter(torch.tensor(wa))
            self.wb = torch.nn.Parameter(torch.tensor(wb))

        def forward(self, a, b, training=False):
            return a @ self.wa + b @ self.wb

    return TTwoIn()


@pytest.mark.parametrize("container", [tuple, list])
def test_a_tuple_of_inputs_is_spread_over_positional_parameters(backend, container):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(16, 3)).astype(np.float32), rng.normal(size=(16, 2)).astype(np.float32)
    y = rng.normal(size=(16, 1)).astype(np.float32)
    wa, wb = rng.normal(size=(3, 1)).astype(np.float32), rng.normal(size=(2, 1)).astype(np.float32)
    model = kp.Model(_two_input_module(backend, wa, wb)).compile(kp.optimizers.SGD(0.1), "mse")
    x = container([a, b])
    out = a @ wa + b @ wb
    np.testing.assert_allclose(model.predict(x, batch_size=8, verbose=0), out, rtol=1e-5)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(np.mean((out - y) ** 2)),
                                                             rel=1e-5)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # one full-batch SGD step
    r = 2 * (out - y) / len(y)
    got = [np.asarray(w.detach() if hasattr(w, "detach") else w) for w in model.get_weights()]
    np.testing.assert_allclose(got[0], wa - 0.1 * a.T @ r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], wb - 0.1 * b.T @ r, rtol=1e-5, atol=1e-6)


def test_tuple_inputs_edges():
    """One parameter takes a tuple whole (as before); a count that fits no signature is an
    error naming `x` and the parameters."""
    import torch

    class Whole(torch.nn.Module):
        def forward(self, inputs):
            a, b = inputs
            return a - b

    class Two(torch.nn.Module):
        def forward(self, a, b):
            return a + b

    a, b = np.ones((4, 2), np.float32), np.full((4, 2), 3.0, np.float32)
    np.testing.assert_array_equal(kp.Model(Whole()).predict((a, b), verbose=0), a - b)
    with pytest.raises(TypeError, match=r"`x` holds 3 inputs and Two\.forward\(a, b\) takes "
                                        r"them as positional arguments: it requires 2 \(a, b\) "
                                        r"and takes at most 2"):
        kp.Model(Two()).predict((a, b, b), verbose=0)


def test_each_call_uses_its_own_form_of_x(backend):
    """The calling rule follows each call's `x` (issue 23): a list then a dict in fit, a
    dict then a list in predict, a tuple validation set beside dict training data, and the
    *_on_batch methods; every result equals the hand-computed a @ wa + b @ wb."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32)
    wa, wb = rng.normal(size=(3, 1)).astype(np.float32), rng.normal(size=(2, 1)).astype(np.float32)
    out = a @ wa + b @ wb
    mse = float(np.mean((out - y) ** 2))
    forms = [[a, b], {"a": a, "b": b}, (a, b), {"b": b, "a": a}]
    model = kp.Model(_two_input_module(backend, wa, wb)).compile(kp.optimizers.SGD(0.0), "mse")
    for x in forms:
        np.testing.assert_allclose(model.predict(x, verbose=0), out, rtol=1e-5, atol=1e-6)
        assert model.evaluate(x, y, verbose=0) == pytest.approx(mse, rel=1e-5)
    for x, val in zip(forms, forms[::-1]):
        hist = model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(val, y))
        assert hist.history["loss"][0] == pytest.approx(mse, rel=1e-5)
        assert hist.history["val_loss"][0] == pytest.approx(mse, rel=1e-5)
    for x in forms[::-1]:
        np.testing.assert_allclose(model.predict_on_batch(x), out, rtol=1e-5, atol=1e-6)
        assert model.test_on_batch(x, y) == pytest.approx(mse, rel=1e-5)
        assert model.train_on_batch(x, y) == pytest.approx(mse, rel=1e-5)
    fresh = kp.Model(_two_input_module(backend, wa, wb))  # dict first, then a list
    for x in ({"a": a, "b": b}, [a, b]):
        np.testing.assert_allclose(fresh.predict(x, verbose=0), out, rtol=1e-5, atol=1e-6)
