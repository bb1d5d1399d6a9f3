"""The public API documents itself: every public callable (kp.__all__ and the submodules'
__all__) spells out its parameters, with type hints and no **kwargs, and describes each
one in the "Args:" section of its docstring (help() is the reference; the docs site is
built from the same docstrings)."""

import inspect
import re
import types

import pytest

import kompile as kp

SUBMODULES = ["callbacks", "distribution", "losses", "metrics", "mixed_precision", "optimizers",
              "schedules", "utils", "saving"]
MODEL_METHODS = ["compile", "fit", "evaluate", "predict", "train_on_batch",
                 "test_on_batch", "predict_on_batch", "save", "save_weights", "load_weights",
                 "get_compile_config", "compile_from_config", "summary", "get_weights",
                 "set_weights"]
# plumbing a user never calls, exported for subclassing or for the loop
INTERNAL = {"callbacks.CallbackList", "callbacks.LazyLogs", "metrics.AutoMetric"}


def _public() -> list[tuple[str, object]]:
    found: dict[str, object] = {}
    for name in kp.__all__:
        obj = getattr(kp, name)
        if not isinstance(obj, types.ModuleType):
            found[name] = obj
    for mod_name in SUBMODULES:
        mod = getattr(kp, mod_name)
        assert hasattr(mod, "__all__"), f"kp.{mod_name} has no __all__"
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj) and f"{mod_name}.{name}" not in INTERNAL:
                found[f"{mod_name}.{name}"] = obj
    for name in MODEL_METHODS:
        found[f"Model.{name}"] = getattr(kp.Model, name)
    return sorted(found.items())


def _target(obj: object) -> tuple[object, str]:
    """The function whose signature is checked and the docstring describing it."""
    if isinstance(obj, type):
        init = obj.__init__
        doc = (obj.__doc__ or "") + "\n" + (init.__doc__ or "" if "__init__" in vars(obj)
                                            else "")
        for base in obj.__mro__[1:]:  # an inherited __init__ is documented by the class
            if "__init__" in vars(obj) or base is object:
                break
            if "__init__" in vars(base):
                doc += "\n" + (base.__doc__ or "") + "\n" + (vars(base)["__init__"].__doc__ or "")
                break
        return init, doc
    return obj, getattr(obj, "__doc__", None) or ""


SECTION = re.compile(r"^\s*(Args|Arguments|Returns|Raises|Example|Examples|Yields|Note|Notes|"
                     r"Attributes):\s*$")


def _args_section(doc: str) -> set[str]:
    """Parameter names described in the Google-style "Args:" sections of ``doc``."""
    names: set[str] = set()
    lines = doc.expandtabs().splitlines()
    for i, line in enumerate(lines):
        if not re.match(r"^\s*(Args|Arguments):\s*$", line):
            continue
        indent = None
        for entry in lines[i + 1:]:
            if not entry.strip():
                continue
            if SECTION.match(entry):
                break
            width = len(entry) - len(entry.lstrip())
            indent = width if indent is None else indent
            if width < indent:
                break
            m = re.match(r"\s*(\w+)(?: \(.*?\))?:", entry)
            if width == indent and m:
                names.add(m.group(1))
    return names


PUBLIC = _public()


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_signature_explicit_and_documented(name, obj):
    fn, doc = _target(obj)
    if fn is object.__init__:
        return  # takes no arguments
    assert doc.strip(), f"{name} has no docstring"
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    var = [p.name for p in params if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    assert not var, f"{name} takes *{var}: public signatures list their parameters"
    untyped = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"{name}: parameters without a type hint: {untyped}"
    described = _args_section(doc)
    missing = [p.name for p in params if p.name not in described]
    assert not missing, f"{name}: parameters not described under 'Args:': {missing}"
    stale = sorted(described - {p.name for p in params})
    assert not stale, f"{name}: 'Args:' describes parameters it does not take: {stale}"


def test_compile_help_is_a_complete_reference():
    text = kp.Model.compile.__doc__
    for word in ("Args:", "Returns:", "Raises:", "Example:", "by *name*", "keyword-only",
                 "loss_weights", "weighted_metrics", "steps_per_execution", "Deprecated"):
        assert word in text


def test_unknown_keyword_names_the_closest_match():
    from flax import nnx

    model = kp.Model(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))
    with pytest.raises(TypeError, match=r"compile\(\) got an unexpected keyword argument "
                                        r"'loss_weight'\. Did you mean 'loss_weights'\?"):
        model.compile("sgd", "mse", loss_weight=1.0)
    with pytest.raises(TypeError, match="'epoch'. Did you mean 'epochs'"):
        model.compile("sgd", "mse").fit([[0.0, 1.0]], [[1.0]], epoch=2)
    with pytest.raises(TypeError, match="'from_logit'. Did you mean 'from_logits'"):
        kp.losses.BinaryCrossentropy(from_logit=True)
    with pytest.raises(TypeError, match="'threshhold'. Did you mean 'threshold'"):
        kp.metrics.BinaryAccuracy(threshhold=0.3)
    with pytest.raises(TypeError):  # only optimizer, loss and metrics are positional
        model.compile("sgd", "mse", [], {"a": 1.0})
