"""Dataset inputs (issue 11 items 4, 5; issue 16 item 7): lists of batches, nested Python
lists, DataLoaders over IterableDatasets and of dicts, and ``steps_per_epoch`` with arrays
continuing through the data across epochs. Each is checked against the same training given
another way (a generator of the same batches in the same order), on both backends.
"""

import numpy as np
import pytest

import kompile as kp

from . import models

N, BATCH = 36, 8  # 4 full batches and a tail of 4


def _data(seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(N, 4)).astype(np.float32)
    y = (x @ r.normal(size=(4, 1)) + 0.3).astype(np.float32)
    sw = r.uniform(0.1, 2.0, size=N).astype(np.float32)
    return x, y, sw


def _model(backend, spe=1):
    return kp.Model(models.build(backend, "linear")).compile(
        kp.optimizers.SGD(0.05), "mse", metrics=["mae"], steps_per_execution=spe)


def _batches(*arrays, order=None):
    order = np.arange(N) if order is None else order
    return [tuple(a[order[i:i + BATCH]] for a in arrays) for i in range(0, N, BATCH)]


def _same(model, hist, ref, ref_hist):
    for got, want in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for key, values in ref_hist.history.items():
        assert hist.history[key] == pytest.approx(values, rel=1e-5), key


def test_list_of_batches_is_a_dataset(backend):
    x, y, sw = _data()
    batches = _batches(x, y, sw)  # uneven last batch
    assert len(batches[-1][0]) == 4
    model = _model(backend)
    hist = model.fit(batches, epochs=2, verbose=0, validation_data=_batches(x, y))
    assert hist.params["steps"] == 5
    ref = _model(backend)
    ref_hist = ref.fit(x, y, sample_weight=sw, batch_size=BATCH, epochs=2, shuffle=False,
                       verbose=0, validation_data=(x, y))
    _same(model, hist, ref, ref_hist)
    assert model.evaluate(tuple(_batches(x, y)), verbose=0) == pytest.approx(
        ref.evaluate(x, y, verbose=0), rel=1e-6)
    np.testing.assert_allclose(model.predict(_batches(x, y), verbose=0),
                               ref.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="`batch_size` must not be given when `x` is a list of"):
        model.fit(batches, batch_size=8, verbose=0)


def test_multi_input_list_stays_inputs(backend):
    """A list of arrays is several inputs, not batches; a tuple validation_data is (x, y)."""
    r = np.random.default_rng(0)
    xa, xb = r.normal(size=(16, 2)).astype(np.float32), r.normal(size=(16, 3)).astype(np.float32)
    y = [r.normal(size=(16, 2)).astype(np.float32), r.normal(size=(16,)).astype(np.float32)]
    model = kp.Model(models.build(backend, "multi_input")).compile("sgd", "mse")
    x = {"a": xa, "b": xb}
    hist = model.fit(x, y, batch_size=8, verbose=0, validation_data=(x, y))
    assert "val_loss" in hist.history


def test_nested_python_list_is_one_array(backend):
    x, y, _ = _data()
    model = _model(backend)
    got = model.evaluate(x.tolist(), y.tolist(), verbose=0)
    assert got == pytest.approx(_model(backend).evaluate(x, y, verbose=0), rel=1e-6)
    with pytest.raises(ValueError, match="`x` is a nested Python list that is not rectangular"):
        model.predict([[1.0, 2.0, 3.0, 4.0], [1.0]], verbose=0)


def test_iterable_dataset_loader_without_length(backend):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, IterableDataset

    x, y, _ = _data()

    class Stream(IterableDataset):
        def __iter__(self):
            for i in range(N):
                yield torch.from_numpy(x[i]), torch.from_numpy(y[i])

    model = _model(backend)
    hist = model.fit(DataLoader(Stream(), batch_size=BATCH), epochs=2, verbose=0,
                     validation_data=DataLoader(Stream(), batch_size=BATCH))
    assert hist.params["steps"] is None
    ref = _model(backend)
    ref_hist = ref.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
                       validation_data=(x, y))
    _same(model, hist, ref, ref_hist)


@pytest.mark.parametrize("spe", [1, 3])
def test_steps_per_epoch_continues_through_arrays(backend, spe):
    """5 batches a pass, 3 per epoch: epochs read batches 0-2, 3-4 + 0 (a new pass), 1-3 ..."""
    x, y, sw = _data()
    model = _model(backend, spe)
    hist = model.fit(x, y, sample_weight=sw, batch_size=BATCH, epochs=4, steps_per_epoch=3,
                     shuffle=False, verbose=0)
    assert hist.params["steps"] == 3

    def forever():
        while True:
            yield from _batches(x, y, sw)

    ref = _model(backend)
    ref_hist = ref.fit(forever(), steps_per_epoch=3, epochs=4, verbose=0)
    _same(model, hist, ref, ref_hist)


def test_steps_per_epoch_shuffles_a_new_pass_only_when_used_up(backend):
    x, y, _ = _data()
    model = _model(backend, 2)
    kp.utils.set_random_seed(5)
    hist = model.fit(x, y, batch_size=BATCH, epochs=4, steps_per_epoch=3, verbose=0)

    def forever():
        while True:  # the same draws from NumPy's RNG, one permutation per pass
            yield from _batches(x, y, order=np.random.permutation(N))

    ref = _model(backend)
    kp.utils.set_random_seed(5)
    ref_hist = ref.fit(forever(), steps_per_epoch=3, epochs=4, verbose=0)
    _same(model, hist, ref, ref_hist)


def test_dataloader_of_dicts(backend):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    r = np.random.default_rng(0)
    xa, xb = r.normal(size=(16, 2)).astype(np.float32), r.normal(size=(16, 3)).astype(np.float32)
    rows = [{"a": torch.from_numpy(xa[i]), "b": torch.from_numpy(xb[i])} for i in range(16)]
    model = kp.Model(models.build(backend, "multi_input")).compile("sgd", "mse")
    got = model.predict(DataLoader(rows, batch_size=8), verbose=0)
    want = model.predict({"a": xa, "b": xb}, verbose=0)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    with pytest.raises(ValueError, match=r"yields dicts without targets.*yield \(x, y\)"):
        model.fit(DataLoader(rows, batch_size=8), verbose=0)


def test_generator_of_four_tuples(backend):
    x, y, sw = _data()
    model = _model(backend)
    with pytest.raises(ValueError, match="a tuple of 4 entries; expected x, .*sample_weight"):
        model.fit(iter([(x, y, sw, sw)]), verbose=0)


def test_continuing_passes_keep_the_jax_fast_path(monkeypatch):
    """Passes that continue across epochs need nothing implicit from the host, and the
    streaming path (data too large for the device) gives the same training."""
    jax = pytest.importorskip("jax")
    from kompile.backends.jax import JaxBackend

    x, y, _ = _data()
    model = _model("jax", 2)
    model.fit(x, y, batch_size=BATCH, epochs=1, steps_per_epoch=3, verbose=0)  # compile first
    with jax.transfer_guard("disallow"):
        model.fit(x, y, batch_size=BATCH, epochs=3, steps_per_epoch=3, verbose=0)
    results = []
    for fits in (True, False):
        monkeypatch.setattr(JaxBackend, "fits_on_device", lambda self, nbytes, f=fits: f)
        m = _model("jax", 2)
        np.random.seed(3)
        hist = m.fit(x, y, batch_size=BATCH, epochs=4, steps_per_epoch=3, verbose=0)
        results.append((hist.history["loss"], m.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_dataloader_of_dicts_with_the_models_own_loss():
    """datasets style: the labels ride inside the dict batch, the module returns its `loss`
    (Hugging Face's convention), int64 labels reach F.cross_entropy; no `y` anywhere."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    class OwnLoss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, batch):
            logits = self.lin(batch["features"])
            out = {"logits": logits}
            if "labels" in batch:
                out["loss"] = F.cross_entropy(logits, batch["labels"])
            return out

    torch.manual_seed(0)
    r = np.random.default_rng(0)
    x, y = r.normal(size=(32, 4)).astype(np.float32), r.integers(0, 3, 32)
    rows = [{"features": torch.from_numpy(x[i]), "labels": torch.tensor(y[i])} for i in range(32)]
    module = OwnLoss()
    model = kp.Model(module).compile(kp.optimizers.SGD(0.5))
    with torch.no_grad():
        want = F.cross_entropy(module.lin(torch.from_numpy(x)), torch.from_numpy(y)).item()
    assert model.evaluate(DataLoader(rows, batch_size=8), verbose=0) == pytest.approx(want, 1e-5)
    hist = model.fit(DataLoader(rows, batch_size=8), epochs=3, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
