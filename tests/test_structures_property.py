"""Property tests for per-output pairing (SPEC sections 3, 4, 6, 7), on every backend.

Hypothesis draws output structures (dicts in random key order, tuples, lists, one output,
a dict with an inner tuple, and random trees of dicts, lists, tuples and namedtuples up to
four levels deep, whose output names the test derives from the paths by SPEC's rule),
outputs of all-different shapes, and random per-output losses, loss weights, metrics,
weighted metrics, targets, sample weights, sample-weight modes and class weights, each in
a random form (one for all, a list by position, a partial dict by name, or nested like the
outputs: namedtuples given as namedtuples or dicts, registered losses placed on inner
nodes). Every value ``evaluate``/``train_on_batch`` reports is checked against
``multi_reference``, which looks everything up by output name, so no mis-pairing can pass.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kompile as kp

from . import models
from .multi_reference import Metric, OutputCase, expected, log_names

N, N_IN, BATCH = 8, 4, 4
SHAPES = [(), (1,), (3,), (5,), (2, 4), (3, 2), (4, 1)]
NAMES = ["z", "a", "m", "b", "out"]
REDUCTIONS = ["sum_over_batch_size", "sum", "mean_with_sample_weight"]
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _loss_choices(shape, sparse):
    if sparse:
        return [("scce", "sparse_categorical_crossentropy"), ("ce", "crossentropy")]
    out = [("mse", "mse"), ("mae", "mean_absolute_error"), ("bce", "binary_crossentropy"),
           ("huber", "huber_obj"), ("ce", "crossentropy"), ("mse", "mse_obj")]
    if shape and shape[-1] > 1:
        out.append(("cce", "categorical_crossentropy"))
    return out


def _metric_choices(shape, sparse):
    if sparse:
        return [("sparse_categorical_accuracy", "sparse_categorical_accuracy"),
                ("acc", "accuracy"), ("acc", "acc"), ("scce", "sparse_categorical_crossentropy"),
                ("ce", "crossentropy")]
    out = [("mae", "mae"), ("mse", "mse"), ("binary_accuracy", "binary_accuracy"),
           ("acc", "accuracy"), ("ce", "ce"), ("mae", "mae_obj")]
    if shape and shape[-1] > 1:
        out.append(("categorical_accuracy", "categorical_accuracy"))
    return out


COMMON_METRICS = [("acc", "accuracy"), ("acc", "acc"), ("ce", "crossentropy"), ("ce", "ce")]


def _loss_value(key, reduction):
    if key == "huber_obj":
        return kp.losses.Huber(delta=0.5, reduction=reduction)
    if key == "mse_obj":
        return kp.losses.MeanSquaredError(reduction=reduction, name="squares")
    return key


def _metric(fn, key):
    if key == "mae_obj":
        return Metric(fn, "mean_absolute_error", kp.metrics.MeanAbsoluteError())
    return Metric(fn, key, key)


NT = {m: namedtuple(f"NT{m}", ["u", "v", "w"][:m]) for m in (1, 2, 3)}


def _user_structure(draw, skeleton, form, outputs, attr):
    """One per-output attribute in the form the user writes it: a list, a partial dict, or
    nested like the outputs (``skeleton``: the output tree with output names at the leaves)."""
    if form == "list":
        return [getattr(o, attr) for o in outputs]
    if form == "nested":
        return _nested(draw, skeleton, {o.name: getattr(o, attr) for o in outputs})
    keep = [o for o in outputs if getattr(o, attr) is not None or draw(st.booleans())]
    keys = draw(st.permutations(keep))  # a dict in any key order
    return {o.name: getattr(o, attr) for o in keys}


def _leaf_names(tree):
    if isinstance(tree, dict):
        return [n for v in tree.values() for n in _leaf_names(v)]
    if isinstance(tree, list | tuple):
        return [n for v in tree for n in _leaf_names(v)]
    return [tree]


def _nested(draw, tree, values, inner_losses=False):
    """``values`` (by output name) arranged like ``tree``; dicts may drop None entries,
    namedtuples may be given as dicts, and with ``inner_losses`` a subtree whose outputs
    share one registered loss may get that loss once, at its node."""
    if not isinstance(tree, dict | list | tuple):
        return values[tree]
    if inner_losses:
        shared = {repr(values[n]) for n in _leaf_names(tree)}
        first = values[_leaf_names(tree)[0]]
        if len(shared) == 1 and isinstance(first, str) and draw(st.booleans()):
            return first
    if isinstance(tree, dict):
        out = {k: _nested(draw, v, values, inner_losses) for k, v in tree.items()}
        if draw(st.booleans()):
            out = {k: v for k, v in out.items() if v is not None}
        return out
    items = [_nested(draw, v, values, inner_losses) for v in tree]
    if hasattr(tree, "_fields"):
        return type(tree)(*items) if draw(st.booleans()) else dict(zip(tree._fields, items))
    return type(tree)(items) if draw(st.booleans()) else list(items)


@st.composite
def deep_trees(draw, n):
    """A random output tree with ``n`` outputs, and its output names by SPEC's path rule:
    dict keys and namedtuple fields by name, list/tuple entries by position from 1 (at the
    top: output_1, ...), joined with '_'."""
    keys = iter(draw(st.permutations(["g", "k", "r", "s", "t", "q", "e", "f", "h", "j"])))

    def build(k, name, depth):
        if depth > 0 and k == 1 and (depth >= 3 or draw(st.booleans())):
            return name
        m = k if depth >= 3 else draw(st.integers(1 if depth else min(2, k), min(k, 3)))
        cuts = sorted(draw(st.permutations(range(1, k)))[:m - 1])
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, k])]
        kind = draw(st.sampled_from(["dict", "list", "tuple", "namedtuple"]))
        if kind == "dict":
            labels = [next(keys) for _ in sizes]
        elif kind == "namedtuple":
            labels = list(NT[m]._fields)
        else:
            labels = [f"output_{i + 1}" if depth == 0 else str(i + 1) for i in range(m)]
        names = [label if depth == 0 else f"{name}_{label}" for label in labels]
        children = [build(size, child, depth + 1) for size, child in zip(sizes, names)]
        if kind == "dict":
            return dict(zip(labels, children))
        if kind == "namedtuple":
            return NT[m](*children)
        return tuple(children) if kind == "tuple" else children

    tree = build(n, "", 0)
    return tree, _leaf_names(tree)


@st.composite
def cases(draw):
    n = draw(st.integers(1, 4))
    structure = draw(st.sampled_from(["dict", "tuple", "list"] + (["single"] if n == 1 else [])
                                     + (["nested", "deep", "deep"] if n >= 2 else [])))
    shapes = draw(st.permutations(SHAPES))[:n]
    names = list(draw(st.permutations(NAMES))[:n])
    output_names, skeleton = None, None
    if structure == "deep":
        skeleton, names = draw(deep_trees(n))
    elif structure == "nested":  # {"g": (g_1, g_2), other: ...}, "g" first or last
        others = names[:n - 2]
        names = ["g_1", "g_2", *others] if draw(st.booleans()) else [*others, "g_1", "g_2"]
        skeleton = {("g" if k.startswith("g_") else k): ("g_1", "g_2") if k.startswith("g_")
                    else k for k in names}
    elif structure == "single":
        names = ["output"]
    elif structure != "dict":
        if draw(st.booleans()):
            output_names = names
        else:
            names = [f"output_{i + 1}" for i in range(n)]
    multi = structure != "single"
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    outputs, sparse = [], {}
    for name, shape in zip(names, shapes):
        o = OutputCase(name, tuple(shape))
        sparse[name] = bool(shape) and shape[-1] > 1 and draw(st.booleans())
        if sparse[name]:
            o.y = rng.integers(0, shape[-1], (N, *shape[:-1])).astype(np.int32)
        else:
            o.y = rng.integers(0, 2, (N, *shape)).astype(np.float32)
            if shape and shape[-1] == 1 and draw(st.booleans()):
                o.y = o.y[..., 0]  # a target off by a trailing axis of 1
        outputs.append(o)
    # ---- losses: one for all, a list by position, or a partial dict by name
    nested = ["nested"] if skeleton is not None else []
    loss_form = draw(st.sampled_from(["one", "list", "dict", *nested]))
    if loss_form == "one":
        common = [("ce", "crossentropy")] + (
            [("mse", "mse"), ("mae", "mae")] if not any(sparse.values()) else [])
        fn, key = draw(st.sampled_from(common))
        for o in outputs:
            o.loss, o.loss_value = fn, key
        loss = key
    else:
        for o in outputs:
            if draw(st.integers(0, 3)) == 0:
                continue
            fn, key = draw(st.sampled_from(_loss_choices(o.shape, sparse[o.name])))
            o.reduction = draw(st.sampled_from(REDUCTIONS)) if key.endswith("_obj") \
                else "sum_over_batch_size"
            o.loss, o.loss_value = fn, _loss_value(key, o.reduction)
        if not any(o.loss for o in outputs):
            o = outputs[0]
            o.loss, o.loss_value = _loss_choices(o.shape, sparse[o.name])[0]
        if loss_form == "nested":  # registered losses may sit on inner nodes
            loss = _nested(draw, skeleton, {o.name: o.loss_value for o in outputs}, True)
        else:
            loss = _user_structure(draw, skeleton, loss_form, outputs, "loss_value")
    # ---- loss weights: a float, a list or a partial dict (always by name)
    lw_form = draw(st.sampled_from([None, "float", "list", "dict", *nested]))
    loss_weights = None
    if lw_form == "float":
        loss_weights = draw(st.sampled_from([0.5, 2.0, 3.0]))
        for o in outputs:
            o.weight = loss_weights
    elif lw_form is not None:
        weights = {o.name: draw(st.sampled_from([None, 0.5, 2.0, 10.0])) for o in outputs}
        for o in outputs:
            o.weight = 1.0 if weights[o.name] is None else weights[o.name]
            o._lw = weights[o.name]
        loss_weights = _user_structure(draw, skeleton, lw_form, outputs, "_lw")
    # ---- metrics and weighted metrics
    compiled = {}
    for attr in ("metrics", "weighted"):
        form = draw(st.sampled_from([None, "all", "per_output", "dict", *nested]))
        if form is None:
            compiled[attr] = None
            continue
        if form == "all":
            pool = COMMON_METRICS + ([] if any(sparse.values()) else [("mae", "mae")])
            if n == 1:
                pool = _metric_choices(outputs[0].shape, sparse[names[0]])
            sizes = [k for k in range(1, 4) if k != n or n == 1]
            chosen = [_metric(*draw(st.sampled_from(pool)))
                      for _ in range(draw(st.sampled_from(sizes)))]
            for o in outputs:
                setattr(o, attr, list(chosen))
            compiled[attr] = [m.value for m in chosen]
            continue
        entries = {}
        for o in outputs:
            k = draw(st.integers(0, 3))
            ms = [_metric(*draw(st.sampled_from(_metric_choices(o.shape, sparse[o.name]))))
                  for _ in range(k)]
            setattr(o, attr, ms)
            # an entry is None, one metric or a list of metrics
            entries[o.name] = None if not ms else (
                ms[0].value if k == 1 and draw(st.booleans()) else [m.value for m in ms])
        for o in outputs:
            o._entry = entries[o.name]
        compiled[attr] = _user_structure(
            draw, skeleton, {"per_output": "list"}.get(form, form), outputs, "_entry")
    # ---- sample weights, sample-weight modes and class weights
    sw_form = draw(st.sampled_from([None, "one", "list", "dict", *nested]))
    sample_weight = None
    weights = [0.0, 0.5, 1.0, 2.0]
    if sw_form == "one":
        sample_weight = rng.choice(weights, N).astype(np.float32)
        for o in outputs:
            o.sw = sample_weight
    elif sw_form is not None:
        for o in outputs:
            rank2 = len(o.shape) == 2
            kind = draw(st.sampled_from([None, "1d"] + (["2d"] * 2 if rank2 else [])))
            if kind == "1d":
                o.sw = rng.choice(weights, N).astype(np.float32)
            elif kind == "2d":
                o.sw = rng.choice(weights, (N, o.shape[0])).astype(np.float32)
                o.temporal = draw(st.booleans())
        sample_weight = _user_structure(draw, skeleton, sw_form, outputs, "sw")
    modes = None
    if any(o.temporal for o in outputs):
        for o in outputs:
            o._mode = "temporal" if o.temporal else None
        modes = _user_structure(draw, skeleton, draw(st.sampled_from(["list", "dict", *nested])),
                                outputs, "_mode")
    method = draw(st.sampled_from(["evaluate", "train_on_batch", "fit"]))
    class_weight = None
    needs_y = lambda o: o.loss or o.metrics or o.weighted  # noqa: E731
    if method != "evaluate" and draw(st.booleans()):
        per = {}
        for o in outputs:
            if multi and (not needs_y(o) or draw(st.booleans())):
                continue
            classes = o.shape[-1] if o.shape and o.shape[-1] > 1 else 2
            o.class_weight = {c: draw(st.sampled_from([0.0, 0.5, 3.0]))
                              for c in range(classes) if draw(st.booleans())}
            per[o.name] = o.class_weight
        class_weight = (per or None) if multi else outputs[0].class_weight
    # ---- targets: by name (partial dict) or by position
    if structure == "single":
        y = outputs[0].y
    elif skeleton is not None and draw(st.booleans()):  # nested like the outputs
        y = _nested(draw, skeleton, {o.name: o.y if needs_y(o) or draw(st.booleans()) else None
                                     for o in outputs})
    elif structure in ("dict", "nested", "deep") and draw(st.booleans()):
        y = {o.name: o.y for o in draw(st.permutations(outputs))
             if needs_y(o) or draw(st.booleans())}
    else:
        y = [o.y if needs_y(o) or draw(st.booleans()) else None for o in outputs]
        y = tuple(y) if draw(st.booleans()) else y
    return dict(structure=skeleton if structure == "deep" else structure,
                heads=list(zip(names, shapes)), output_names=output_names,
                outputs=outputs, multi=multi, method=method, y=y, sample_weight=sample_weight,
                class_weight=class_weight, x_seed=draw(st.integers(0, 100)),
                compile=dict(loss=loss, loss_weights=loss_weights, metrics=compiled["metrics"],
                             weighted_metrics=compiled["weighted"], sample_weight_mode=modes))


def _check(backend, case):
    x = np.random.default_rng(case["x_seed"]).normal(size=(N, N_IN)).astype(np.float32)
    module = models.build(backend, "heads", heads=case["heads"], structure=case["structure"],
                          n_in=N_IN)
    model = kp.Model(module, output_names=case["output_names"]).compile(
        kp.optimizers.SGD(learning_rate=0.0), **case["compile"])
    preds = models.heads_numpy(x, case["heads"])
    outputs, method = case["outputs"], case["method"]
    y, sw, cw = case["y"], case["sample_weight"], case["class_weight"]
    loss_logs, plain, weighted = log_names(outputs)
    order = ["loss", *loss_logs] + [log for log, *_ in plain + weighted]
    if method == "fit":  # learning rate 0: every batch sees the initial weights
        want = expected(outputs, preds, BATCH)
        hist = model.fit(x, y, sample_weight=sw, class_weight=cw, batch_size=BATCH,
                         validation_data=(x, y, sw), shuffle=False, verbose=0).history
        for o in outputs:
            o.class_weight = None  # training data only (SPEC 4)
        want_val = expected(outputs, preds, BATCH)
        want.update({"val_" + k: v for k, v in want_val.items()})
        assert sorted(hist) == sorted(want)
        for key, value in want.items():
            assert hist[key][0] == pytest.approx(value, rel=2e-4, abs=2e-5), key
        return
    if method == "evaluate":
        call = lambda rd: model.evaluate(  # noqa: E731
            x, y, sample_weight=sw, batch_size=BATCH, verbose=0, return_dict=rd)
        want = expected(outputs, preds, BATCH)
    else:  # learning rate 0: the logs of the batch before the (null) update
        call = lambda rd: model.train_on_batch(  # noqa: E731
            x, y, sample_weight=sw, class_weight=cw, return_dict=rd)
        want = expected(outputs, preds, N)
    logs = call(True)
    assert list(logs) == sorted(want), (list(logs), sorted(want))
    for key, value in want.items():
        assert logs[key] == pytest.approx(value, rel=2e-4, abs=2e-5), key
    # the list form: [loss, per-output losses..., metrics in compile order]
    assert list(want) == order
    values = call(False)
    if len(order) == 1:
        assert isinstance(values, float)
        values = [values]
    np.testing.assert_allclose(values, [want[k] for k in order], rtol=2e-4, atol=2e-5)


def test_every_reported_value_matches_the_numpy_reference(backend):
    # torch steps run eagerly (cheap); each JAX example compiles a new step (~0.5 s)
    examples = {"jax": 25, "torch": 120}[backend]
    run = given(case=cases())(lambda case: _check(backend, case))
    settings(SETTINGS, max_examples=examples)(run)()
