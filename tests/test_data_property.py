"""Hypothesis drives compile/fit/evaluate/predict with drawn bad arguments and data (issue 13
"Done when"): every call either works or raises kompile's own ``ValueError``/``TypeError``
naming the argument (raised from kompile's code, not from inside JAX, torch or NumPy), and a
call that works on finite data never logs NaN."""

from __future__ import annotations

import math
import os
import traceback
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kompile as kp

from . import models

SETTINGS = settings(deadline=None, derandomize=True,
                    max_examples=int(os.environ.get("KOMPILE_PROPERTY_EXAMPLES", "20")),
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
KOMPILE = os.sep + "kompile" + os.sep
N_IN = 4

BAD_INTS = st.sampled_from([None, 0, -1, 1, 3, 8, True, 2.0, "4", [2]])


def _x(draw, n: int):
    kind = draw(st.sampled_from(["float", "nan", "int", "str", "nested", "batches"]))
    r = np.random.default_rng(draw(st.integers(0, 3)))
    x = r.normal(size=(n, N_IN)).astype(np.float32)
    finite = True
    if kind == "nan" and n:
        x[draw(st.integers(0, n - 1)), 0] = draw(st.sampled_from([np.nan, np.inf]))
        finite = False
    elif kind == "int":
        return r.integers(0, 3, size=(n, N_IN)), finite, kind
    elif kind == "str":
        return np.array([["a"] * N_IN] * max(n, 1)), finite, kind
    elif kind == "nested":
        return x.tolist(), finite, kind
    return x, finite, kind


@st.composite
def cases(draw):
    n = draw(st.sampled_from([0, 1, 5, 12]))
    x, finite, kind = _x(draw, n)
    y_kind = draw(st.sampled_from(["ok", "short", "nan", "none", "str"]))
    y = np.random.default_rng(1).normal(size=(n, 1)).astype(np.float32)
    if y_kind == "short":
        y = y[: max(n - 1, 0)]
    elif y_kind == "nan" and n:
        y[0, 0] = np.nan
        finite = False
    elif y_kind == "none":
        y = None
    elif y_kind == "str":
        y = np.array(["b"] * n)
    if kind == "batches":  # a list of (x, y) batches; y then goes inside
        x, y = [(x[i:i + 4], y[i:i + 4]) for i in range(0, n, 4)] if y is not None else x, None
    args = {
        "batch_size": draw(BAD_INTS),
        "epochs": draw(st.sampled_from([0, 1, 2, -1, "3", 1.5, None])),
        "validation_split": draw(st.sampled_from([0.0, 0.25, 1.0, -0.1, "0.1", True])),
        "validation_freq": draw(st.sampled_from([1, 2, 0, [1], ["1"], 1.0])),
        "steps_per_epoch": draw(BAD_INTS),
        "initial_epoch": draw(st.sampled_from([0, 1, -1, "0"])),
        "verbose": draw(st.sampled_from([0, 3, "loud", None, True])),
        "shuffle": draw(st.sampled_from([True, False, "yes"])),
        "sample_weight": draw(st.sampled_from([None, "ones", "nan", "short"])),
    }
    compile_args = {
        "loss": draw(st.sampled_from(["mse", "mae", "msee", 3])),
        "learning_rate": draw(st.sampled_from([0.01, float("nan"), float("inf"), "0.1"])),
        "steps_per_execution": draw(st.sampled_from([1, 2, 0])),
    }
    return x, y, n, finite, args, compile_args


def _assert_kompile_error(err: BaseException, call: str) -> None:
    assert isinstance(err, ValueError | TypeError), f"{call}: {type(err).__name__}: {err}"
    frames = traceback.extract_tb(err.__traceback__)
    last = frames[-1].filename
    assert KOMPILE in last, f"{call} raised from outside kompile ({last}): {err}"
    named = "`" in str(err) or str(err).startswith("Unknown ")  # "Unknown loss 'msee'..."
    assert named, f"{call}: the message names no argument: {err}"


def _sample_weight(kind, n):
    if kind == "ones":
        return np.ones(n, np.float32)
    if kind == "nan":
        w = np.ones(n, np.float32)
        w[:1] = np.nan
        return w
    if kind == "short":
        return np.ones(max(n - 1, 0), np.float32)
    return None


def _run(call: str, fn, finite: bool):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
    except (ValueError, TypeError) as err:
        _assert_kompile_error(err, call)
        return None
    values = []
    if isinstance(out, kp.callbacks.History):
        values = [v for vs in out.history.values() for v in vs]
    elif isinstance(out, float | list):
        values = out if isinstance(out, list) else [out]
    if finite:
        assert all(math.isfinite(v) for v in values), f"{call} logged NaN on finite data"
    return out


@pytest.mark.parametrize("kind", ["linear"])
@given(case=cases())
@SETTINGS
def test_drawn_bad_calls_fail_cleanly(backend, kind, case):
    x, y, n, finite, args, compile_args = case
    model = kp.Model(models.build(backend, kind))
    try:
        model.compile(kp.optimizers.SGD(compile_args["learning_rate"]), compile_args["loss"],
                      steps_per_execution=compile_args["steps_per_execution"])
    except (ValueError, TypeError) as err:
        _assert_kompile_error(err, "compile")
        return
    sw = _sample_weight(args.pop("sample_weight"), n)
    if isinstance(x, list) and x and isinstance(x[0], tuple):
        sw = None  # a list of batches holds its own weights
    fit_args = dict(args)
    _run("fit", lambda: model.fit(x, y, sample_weight=sw, **fit_args), finite)
    _run("evaluate", lambda: model.evaluate(x, y, batch_size=args["batch_size"], verbose=0,
                                            sample_weight=sw), finite)
    out = _run("predict", lambda: model.predict(x, batch_size=args["batch_size"], verbose=0),
               finite)
    if out is not None and finite:
        assert np.all(np.isfinite(out))
