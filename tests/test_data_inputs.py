"""Every input kind through the one data entry point gives the same training as arrays.

Generators, iterables, torch DataLoaders and pandas objects are checked against the same
data given as NumPy arrays (unshuffled, same batches), on both backends; unsupported
combinations raise errors naming the argument; ``kp.utils.set_random_seed`` makes fit
reproducible.
"""

import warnings

import numpy as np
import pytest

import kompile as kp

from . import models

N, BATCH = 40, 8


def _data(seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(N, 4)).astype(np.float32)
    y = (x @ r.normal(size=(4, 1)) + 0.3).astype(np.float32)
    sw = r.uniform(0.1, 2.0, size=N).astype(np.float32)
    return x, y, sw


def _model(backend, kind="linear"):
    return kp.Model(models.build(backend, kind)).compile(kp.optimizers.SGD(0.05), "mse",
                                                          metrics=["mae"])


def _with_arrays(backend, epochs=2, sample_weight=None, **kw):
    x, y, _ = _data()
    model = _model(backend)
    hist = model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0,
                     sample_weight=sample_weight, **kw)
    return model, hist


def _assert_same(model, hist, ref_model, ref_hist):
    for got, want in zip(model.get_weights(), ref_model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    for key, values in ref_hist.history.items():
        assert hist.history[key] == pytest.approx(values, rel=1e-6), key


def _batches(*arrays):
    for i in range(0, N, BATCH):
        yield tuple(a[i:i + BATCH] for a in arrays)


def test_generator_with_steps_per_epoch(backend):
    x, y, _ = _data()

    def forever():
        while True:
            yield from _batches(x, y)

    model = _model(backend)
    hist = model.fit(forever(), steps_per_epoch=N // BATCH, epochs=2, verbose=0)
    assert hist.params["steps"] == N // BATCH
    _assert_same(model, hist, *_with_arrays(backend))


def test_generator_with_sample_weights(backend):
    x, y, sw = _data()

    def forever():
        while True:
            yield from _batches(x, y, sw)

    model = _model(backend)
    hist = model.fit(forever(), steps_per_epoch=N // BATCH, epochs=2, verbose=0)
    _assert_same(model, hist, *_with_arrays(backend, sample_weight=sw))


class Batches:
    """A re-iterable with a length: a fresh pass every epoch, steps from len()."""

    def __init__(self, *arrays):
        self.arrays = arrays

    def __iter__(self):
        return _batches(*self.arrays)

    def __len__(self):
        return N // BATCH


def test_reiterable_and_validation_iterable(backend):
    x, y, _ = _data()
    model = _model(backend)
    hist = model.fit(Batches(x, y), epochs=3, validation_data=Batches(x, y), verbose=0)
    assert hist.params["steps"] == N // BATCH
    ref_model, ref_hist = _with_arrays(backend, epochs=3, validation_data=(x, y))
    _assert_same(model, hist, ref_model, ref_hist)
    assert model.evaluate(Batches(x, y), verbose=0) == pytest.approx(
        ref_model.evaluate(x, y, verbose=0), rel=1e-6)
    np.testing.assert_allclose(model.predict(iter([x[:8], x[8:20]]), verbose=0),
                               ref_model.predict(x[:20], verbose=0), rtol=1e-6, atol=1e-7)


def test_torch_dataloader(backend):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    x, y, sw = _data()
    ds = TensorDataset(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(sw))
    model = _model(backend)
    hist = model.fit(DataLoader(ds, batch_size=BATCH), epochs=2, verbose=0)
    assert hist.params["steps"] == N // BATCH
    _assert_same(model, hist, *_with_arrays(backend, sample_weight=sw))
    x_only = DataLoader(TensorDataset(torch.from_numpy(x)), batch_size=16)
    np.testing.assert_allclose(model.predict(x_only, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


def test_pandas_frames(backend):
    pd = pytest.importorskip("pandas")
    x, y, _ = _data()
    frame = pd.DataFrame(x.astype(np.float64), columns=list("abcd"))
    model = _model(backend)
    hist = model.fit(frame, pd.Series(y[:, 0]), batch_size=BATCH, epochs=2, shuffle=False,
                     validation_split=0.25, verbose=0)
    ref = _model(backend)
    ref_hist = ref.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, validation_split=0.25,
                       verbose=0)
    _assert_same(model, hist, ref, ref_hist)
    assert model.predict(frame, verbose=0).shape == (N, 1)


def test_unsupported_combinations(backend):
    x, y, sw = _data()
    model = _model(backend)
    with pytest.raises(ValueError, match="`validation_split` is only supported for array"):
        model.fit(_batches(x, y), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="`y` must not be given when `x` is a generator"):
        model.fit(_batches(x, y), y, verbose=0)
    with pytest.raises(ValueError, match="`sample_weight` must not be given when `x` is a gen"):
        model.fit(_batches(x, y), sample_weight=sw, verbose=0)
    with pytest.warns(UserWarning, match="`batch_size`=4 is ignored: `x` is a generator"):
        model.fit(_batches(x, y), batch_size=4, verbose=0)  # as Keras: its batches are used
    with pytest.raises(TypeError, match="Argument `x` must be an array, .* received int"):
        model.fit(3, y, verbose=0)
    with pytest.raises(ValueError, match="`x` yielded no batch"):
        model.fit(iter([]), verbose=0)


def test_a_generator_that_runs_out(backend):
    x, y, _ = _data()
    model = _model(backend)
    with pytest.warns(UserWarning, match="ran out of data; interrupting training"):
        hist = model.fit(_batches(x, y), epochs=3, verbose=0)  # 5 batches in all, no steps
    assert hist.epoch == [0]
    seven = list(_batches(x, y)) + list(_batches(x, y))[:2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = _model(backend).fit(iter(seven), steps_per_epoch=5, epochs=3, verbose=0)
    messages = [str(w.message) for w in caught]
    assert any("ran out after 2 of steps=5" in m for m in messages)
    assert any("interrupting training" in m for m in messages)
    assert hist.epoch == [0, 1]


def test_set_random_seed_reproducible(backend):
    r = np.random.default_rng(3)
    x = r.normal(size=(32, 4)).astype(np.float32)
    y = r.normal(size=(32, 2)).astype(np.float32)

    def run(seed):
        kp.utils.set_random_seed(seed)
        model = kp.Model(models.build(backend, "dropout_bn")).compile("adam", "mse")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # shuffled, with dropout
        return model.get_weights()

    first, second, other = run(11), run(11), run(12)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other))
    with pytest.raises(TypeError, match="`seed` must be an int; received 1.5"):
        kp.utils.set_random_seed(1.5)
    with pytest.raises(ValueError, match=r"`seed` must be in \[0, 2\*\*32\)"):
        kp.utils.set_random_seed(-1)
