"""Fused batches when nobody watches them, and steps_per_execution="auto" (pacing.py)."""

import numpy as np
import pytest

import kompile as kp
from kompile.pacing import choose_n

from .models import build


def _data(n=80, seed=0):
    r = np.random.default_rng(seed)
    return r.normal(size=(n, 3)).astype(np.float32), r.normal(size=(n, 2)).astype(np.float32)


class Batches(kp.Callback):
    """Records the batch indices a callback sees."""

    def __init__(self):
        super().__init__()
        self.begins, self.ends = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.begins.append(batch)

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append((batch, dict(logs)["loss"]))


def _fit(backend, spe=None, callbacks=None, epochs=3, batch_size=6):
    x, y = _data()
    extra = {} if spe is None else {"steps_per_execution": spe}
    model = kp.Model(build(backend, "linear", n_in=3, n_out=2)).compile(
        "adam", "mse", metrics=["mae"], **extra)
    np.random.seed(3)
    hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=callbacks,
                     validation_data=(x[:30], y[:30]), verbose=0)
    return model, hist.history, model.evaluate(x, y, batch_size=8, verbose=0)


def _assert_same(a, b):
    (ma, ha, ea), (mb, hb, eb) = a, b
    assert ha.keys() == hb.keys()
    for key in ha:
        np.testing.assert_allclose(ha[key], hb[key], rtol=1e-5, atol=1e-7)
    for wa, wb in zip(ma.get_weights(), mb.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ea, eb, rtol=1e-5)


def test_unwatched_batches_are_fused_with_the_numbers_of_single_steps(monkeypatch):
    from kompile.backends.jax import JaxBackend

    calls = []
    train = JaxBackend.train
    monkeypatch.setattr(JaxBackend, "train", lambda self, feed, index, start, n: (
        calls.append(n), train(self, feed, index, start, n))[1])
    fused = _fit("jax", epochs=4)  # 14 batches per epoch (the last one partial)
    assert max(calls) > 1 and len(calls) < 4 * 14  # several batches per call
    calls.clear()
    single = _fit("jax", spe=1, epochs=4)  # an explicit 1 is one batch per call
    assert calls == [1] * (4 * 14)
    _assert_same(fused, single)


def test_a_batch_callback_still_sees_every_batch(backend):
    seen = Batches()
    watched = _fit(backend, callbacks=[seen], epochs=2)
    assert seen.begins == list(range(14)) * 2
    assert [b for b, _ in seen.ends] == list(range(14)) * 2
    plain = _fit(backend, spe=1, epochs=2)
    _assert_same(watched, plain)
    assert seen.ends[-1][1] == pytest.approx(plain[1]["loss"][-1], rel=1e-5)


def test_steps_per_execution_auto(backend):
    seen = Batches()
    auto = _fit(backend, spe="auto", callbacks=[seen], epochs=3)
    _assert_same(auto, _fit(backend, spe=1, epochs=3))
    ends = [b for b, _ in seen.ends]
    assert ends.count(13) == 3  # every epoch's calls end at its last batch
    # each call begins right after the previous one ended (0 after an epoch's end)
    assert seen.begins == [0] + [0 if b == 13 else b + 1 for b in ends[:-1]]
    if backend == "jax":  # calls after the calibration run several batches
        assert len(ends) < 3 * 14
    else:  # torch eager gains nothing from longer calls: one batch per call
        assert ends == list(range(14)) * 3
    assert auto[0].get_compile_config()["steps_per_execution"] == "auto"


def test_progress_bar_counts_every_batch_of_fused_calls(capsys):
    x, y = _data()
    model = kp.Model(build("jax", "linear", n_in=3, n_out=2)).compile("sgd", "mse")
    model.fit(x, y, batch_size=8, epochs=3, verbose=1)
    out = capsys.readouterr().out
    assert out.count("10/10") >= 3 and "Epoch 3/3" in out


@pytest.mark.parametrize("t1, tn, n, expect", [
    (0.01, None, 1, 5),  # one measurement: all of it taken as per-batch time
    (0.002, 0.011, 10, 49),  # 1 ms overhead + 1 ms per batch: (50 - 1) / 1
    (0.2, None, 1, 1),  # a batch longer than the target: one per call
    (1e-7, 2e-7, 2, 4096),  # capped
])
def test_choose_n_keeps_a_call_near_the_target(t1, tn, n, expect):
    assert choose_n(t1, tn, n, target=0.05) == expect


def test_steps_per_execution_rejects_other_strings():
    with pytest.raises(ValueError, match="steps_per_execution.*'auto'.*'fast'"):
        kp.Model(build("jax", "linear", n_in=3, n_out=2)).compile(
            "sgd", "mse", steps_per_execution="fast")


def test_fused_fit_makes_no_implicit_transfer():
    """After the first fit (compile, calibration), fused calls need nothing from the host."""
    import jax

    x, y = _data()
    model = kp.Model(build("jax", "linear", n_in=3, n_out=2)).compile("adam", "mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    with jax.transfer_guard("disallow"):
        hist = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2
