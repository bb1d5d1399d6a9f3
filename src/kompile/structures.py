"""Output structures: trees with path names, and the one rule that pairs values with them.

A module returns an array or any nesting of dicts (any ``Mapping``), lists, tuples and
namedtuples. ``output_spec`` turns one forward pass into an ``OutputSpec``: a tree of
``Node``s whose array leaves are the model's *outputs*, each named by its path (dict keys
and namedtuple fields by name, list/tuple entries by position from 1, joined by ``_``:
``{"a": (p, {"r": q})}`` has outputs ``a_1`` and ``a_2_r``; a top-level list/tuple is
``output_1, output_2, ...`` or the model's ``output_names``). ``flatten``/``unflatten``
turn outputs into that list and back.

``place`` is the pairing rule every per-output argument (targets, sample weights, class
weights, losses, loss weights, metrics, sample-weight modes) goes through: a value may be
given nested like the outputs, flat by output name (a dict keyed by leaf or inner-node
names, partial), by position (one entry per output), or once for a whole subtree. Dicts
pair by name and lists by position, never by sorted key order. Per-argument meaning
(broadcast, several losses, ...) lives with the argument; this module owns the tree.

Leaves that are not arrays with a batch axis (``None``, caches, 0-d values) are left out
of the outputs with one warning naming them; a 0-d ``loss`` entry of a top-level mapping
is the model's own loss (Hugging Face's convention).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .registry import did_you_mean
from .warn import KompileWarning

MODEL_LOSS_KEY = "loss"


def is_array(v: Any) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype")


def is_namedtuple(v: Any) -> bool:
    return isinstance(v, tuple) and hasattr(type(v), "_fields")


def describe(value: Any) -> str:
    """A short picture of a structure for error messages: shapes instead of values."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in value.items()) + "}"
    if is_namedtuple(value):
        inner = ", ".join(f"{k}={describe(v)}" for k, v in zip(value._fields, value))
        return f"{type(value).__name__}({inner})"
    if isinstance(value, list | tuple):
        inner = ", ".join(describe(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if is_array(value):
        return f"array{tuple(value.shape)}"
    return repr(value)


@dataclass(eq=False)
class Node:
    """One node of the output tree.

    ``kind`` is 'leaf', 'dict', 'list', 'tuple' or 'namedtuple'; ``keys`` the child keys
    (dict keys, namedtuple fields, or positions); ``status`` of a leaf: 'array' (an
    output), 'loss' (the model's own loss) or 'skipped'; ``outputs`` the indices of the
    outputs at or below this node, in output order.
    """

    kind: str
    name: str
    path: tuple[Any, ...]
    keys: tuple[Any, ...] = ()
    children: tuple[Node, ...] = ()
    cls: Any = None
    status: str = "array"
    outputs: list[int] = field(default_factory=list)
    depth: int = 0

    def child(self, key: Any) -> Node | None:
        if self.kind == "namedtuple" and key in self.cls._fields:
            return self.children[self.cls._fields.index(key)]
        for k, c in zip(self.keys, self.children):
            if k == key or (self.kind == "dict" and str(k) == str(key)):
                return c
        return None

    def walk(self) -> list[Node]:
        return [self, *[n for c in self.children for n in c.walk()]]


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


@dataclass(eq=False)
class OutputSpec:
    """The outputs of one forward pass: the tree, the output names and per-sample shapes."""

    root: Node
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # per-sample shapes (batch axis excluded)
    paths: tuple[tuple[Any, ...], ...]
    model_loss: tuple[Any, ...] | None = None  # path of the model's own scalar loss
    skipped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.nodes = {n.name: n for n in self.root.walk() if n.name}
        self.leaves = [self.nodes[name] for name in self.names]

    @property
    def kind(self) -> str:
        return "single" if self.root.kind == "leaf" else self.root.kind

    @property
    def multi(self) -> bool:
        return len(self.names) != 1

    def flatten(self, outputs: Any) -> list[Any]:
        """The outputs in order; the model's own loss, when it has one, comes last."""
        flat = [_get(outputs, p) for p in self.paths]
        if self.model_loss is not None:  # None when this call returned no loss (predict)
            flat.append(outputs.get(self.model_loss[0]) if isinstance(outputs, Mapping)
                        else None)
        return flat

    def unflatten(self, flat: Sequence[Any]) -> Any:
        """The module's structure around ``flat`` (one value per output). Left-out leaves
        are dropped from dicts and are None in lists, tuples and namedtuples."""
        return _rebuild(self.root, dict(zip(self.paths, flat)))

    def subtree(self, node: Node, flat: Sequence[Any]) -> Any:
        """The values of ``flat`` (one per output) arranged as ``node``'s subtree."""
        return _rebuild(node, {self.paths[i]: flat[i] for i in node.outputs})


def _rebuild(node: Node, values: dict[tuple[Any, ...], Any]) -> Any:
    if node.kind == "leaf":
        return values.get(node.path)
    items = [_rebuild(c, values) for c in node.children]
    if node.kind == "dict":
        return {k: v for k, v, c in zip(node.keys, items, node.children)
                if c.kind != "leaf" or c.status == "array"}
    if node.kind == "namedtuple":
        return node.cls(*items)
    return tuple(items) if node.kind == "tuple" else items


# ----------------------------------------------------------------------------- building


def _container(v: Any) -> str | None:
    if isinstance(v, Mapping):
        return "dict"
    if is_namedtuple(v):
        return "namedtuple"
    if isinstance(v, tuple):
        return "tuple"
    if isinstance(v, list):
        return "list"
    return None


def _build(value: Any, name: str, path: tuple[Any, ...], depth: int,
           top_names: Sequence[str] | None) -> Node:
    kind = _container(value)
    if kind is None:
        if not is_array(value) or len(value.shape) == 0:
            status = "loss" if (path == (MODEL_LOSS_KEY,) and is_array(value)) else "skipped"
        else:
            status = "array"
        return Node("leaf", name, path, status=status, depth=depth)
    if kind == "dict":
        keys = tuple(value)
        labels = [str(k) for k in keys]
    elif kind == "namedtuple":
        keys = tuple(range(len(value)))
        labels = list(value._fields)
    else:
        keys = tuple(range(len(value)))
        labels = list(top_names) if depth == 0 and top_names else [
            str(i + 1) if depth else f"output_{i + 1}" for i in keys]
    if depth == 0 and kind in ("dict", "namedtuple"):
        names = labels
    else:
        names = [f"{name}_{label}" if name else label for label in labels]
    children = tuple(_build(value[k], n, (*path, k), depth + 1, None)
                     for k, n in zip(keys, names))
    return Node(kind, name, path, keys, children, type(value) if kind == "namedtuple" else None,
                depth=depth)


def output_spec(outputs: Any, output_names: Sequence[str] | None = None) -> OutputSpec:
    """Name the outputs of one forward pass (SPEC sections 1, 3 and 7)."""
    kind = _container(outputs)
    if kind in ("dict", "namedtuple"):
        keys = [str(k) for k in (outputs if kind == "dict" else outputs._fields)]
        if output_names is not None and list(output_names) != keys:
            warnings.warn(  # as Keras: the keys name the outputs
                f"`output_names` {list(output_names)} is ignored: the module returns a "
                f"{'dict' if kind == 'dict' else 'namedtuple'}, whose keys {keys} name the "
                "outputs. Drop `output_names` for dict and namedtuple outputs.",
                KompileWarning, stacklevel=2)
        root = _build(outputs, "", (), 0, None)
    elif kind in ("list", "tuple"):
        if output_names and len(output_names) != len(outputs):
            raise ValueError(
                f"`output_names` has {len(output_names)} names but the module returns "
                f"{len(outputs)} outputs: {describe(outputs)}."
            )
        root = _build(outputs, "", (), 0, [str(n) for n in output_names or ()])
    else:
        names = list(output_names) if output_names else ["output"]
        if len(names) != 1:
            raise ValueError(f"`output_names` {names} given for a single-output module.")
        root = _build(outputs, str(names[0]), (), 0, None)
    nodes = root.walk()
    seen: dict[str, Node] = {}
    for n in nodes:
        if n.name in seen:
            raise ValueError(
                f"Two entries of the module's output are both named '{n.name}' (paths "
                f"{list(seen[n.name].path)} and {list(n.path)}): output names join the keys "
                f"and positions of the path with '_'. Rename one; outputs: {describe(outputs)}."
            )
        seen[n.name] = n
    arrays = [n for n in nodes if n.kind == "leaf" and n.status == "array"]
    for i, leaf in enumerate(arrays):
        for n in nodes:
            if leaf.path[:len(n.path)] == n.path:
                n.outputs.append(i)
    losses = [n for n in nodes if n.kind == "leaf" and n.status == "loss"]
    if root.kind != "dict":  # the model's loss is a top-level mapping entry only
        for n in losses:
            n.status = "skipped"
        losses = []
    skipped = [n for n in nodes if n.kind == "leaf" and n.status == "skipped"]
    if not arrays and not losses:
        raise TypeError(
            f"The module's output holds no array with a batch axis: {describe(outputs)}. "
            "Modules must return an array, or a dict/list/tuple/namedtuple (nested to any "
            "depth) holding arrays."
        )
    if skipped:
        shown = ", ".join(f"'{n.name}' ({_what(_get(outputs, n.path))})" for n in skipped)
        warnings.warn(
            f"The module's outputs {shown} are not arrays with a batch axis; they are left out "
            "of losses, metrics and predict.", KompileWarning, stacklevel=4)
    return OutputSpec(root, tuple(n.name for n in arrays),
                      tuple(tuple(int(d) for d in _get(outputs, n.path).shape[1:])
                            for n in arrays),
                      tuple(n.path for n in arrays), losses[0].path if losses else None,
                      tuple(n.name for n in skipped))


def _what(v: Any) -> str:
    if is_array(v):
        return f"0-d {getattr(v, 'dtype', '')}".strip()
    return "None" if v is None else type(v).__name__


# ----------------------------------------------------------------------------- pairing


class Placement:
    """Values of one argument placed on the tree: ``(node, value)`` pairs in given order."""

    def __init__(self, items: list[tuple[Node, Any]]):
        self.items = items

    def per_output(self, spec: OutputSpec, default: Any = None) -> list[Any]:
        """One value per output: a value placed at a node applies to every output below
        it; a deeper placement wins over a shallower one."""
        out, depth = [default] * len(spec.names), [-1] * len(spec.names)
        for node, value in self.items:
            for i in node.outputs:
                if node.depth >= depth[i]:
                    out[i], depth[i] = value, node.depth
        return out


def _default_leaf(v: Any) -> bool:
    return not isinstance(v, list | tuple | Mapping)


def _outputs_of(spec: OutputSpec, node: Node) -> list[str]:
    return [spec.names[i] for i in node.outputs]


def _check_batched(node: Node, spec: OutputSpec, argument: str, received: str) -> None:
    """An entry named for an output the module returns without a batch axis: an error
    pointing to kp.add_loss (it was dropped with the generic warning)."""
    if node.kind == "leaf" and node.status == "skipped" and node is not spec.root:
        raise ValueError(
            f"`{argument}` names the output '{node.name}', which the module returns "
            "without a batch axis (a 0-d value, None or another object), so it has no "
            "per-sample values to compare with targets. To add a scalar the module "
            "computes (a KL term, a penalty) to the loss, record it with "
            "kp.add_loss(self, value), or return it under the top-level key 'loss' "
            f"(the model's own loss). Received {received}.")


def place(value: Any, spec: OutputSpec, argument: str, *,
          is_leaf: Callable[[Any], bool] | None = None, shown: Any = None,
          list_at: Callable[[Any, Node], bool] | None = None,
          flat_list: Callable[[Any, Node], bool] | None = None) -> Placement:
    """Place ``value`` on the output tree.

    A dict pairs its keys with the child keys of the node it meets, or with the name of any
    node below it (flat by output name); a list pairs with the children of a list/tuple
    node of the same length, else with the outputs below the node by position (one entry
    per output), else it goes to the node's only output. ``is_leaf(v)`` says whether a value
    is one entry (default: not a list/tuple/dict); ``list_at(v, node)`` may accept a list
    that fits none of the rules as one entry at ``node``; ``flat_list(v, node)``, asked
    first, may take a list as one entry before those rules (metrics for every output). None
    entries place nothing. Errors name the outputs and print ``shown``.
    """
    leaf = is_leaf or _default_leaf
    received = f"{argument}={describe(value if shown is None else shown)}"
    items: list[tuple[Node, Any]] = []

    def where(node: Node) -> str:
        if node is spec.root:
            return "the model has"
        return f"'{node.name}' has"

    def visit(v: Any, node: Node) -> None:
        if v is None:
            return
        if node.kind == "leaf" and isinstance(v, Mapping) and not leaf(v) and all(
                str(k) == node.name for k in v):  # keyed by this output's name (or empty)
            for sub in v.values():
                visit(sub, node)
            return
        if node.kind == "leaf" and isinstance(v, list | tuple) and len(v) == 1:
            visit(v[0], node)  # one entry per output, for one output
            return
        if leaf(v) or (node.kind == "leaf" and not (
                node is spec.root and isinstance(v, Mapping))):
            _check_batched(node, spec, argument, received)
            items.append((node, v))
            return
        if isinstance(v, Mapping):
            below = {n.name: n for n in node.walk() if n is not node}
            unknown = [k for k in v if node.child(k) is None and str(k) not in below]
            if unknown:
                hint = did_you_mean(str(unknown[0]), list(below))
                raise ValueError(
                    f"`{argument}` has keys {unknown} that are not output names.{hint} The "
                    f"model's outputs are {list(spec.names)}; received {received}."
                )
            for k, sub in v.items():
                visit(sub, node.child(k) or below[str(k)])
            return
        v = list(v)
        outs = [spec.leaves[i] for i in node.outputs]
        if flat_list is not None and flat_list(v, node):
            items.append((node, v))
        elif node.kind in ("list", "tuple", "namedtuple") and len(v) == len(node.children):
            for sub, child in zip(v, node.children):
                visit(sub, child)
        elif len(v) == len(outs):
            for sub, child in zip(v, outs):
                visit(sub, child)
        elif len(outs) == 1 and node.kind != "leaf":
            visit(v, outs[0])
        elif list_at is not None and list_at(v, node):
            items.append((node, v))
        else:
            n = len(outs)
            raise ValueError(
                f"`{argument}` is a list of {len(v)} entries but {where(node)} {n} output(s) "
                f"{_outputs_of(spec, node)}; received {received}. Give one entry per output, "
                "or a dict keyed by output name."
            )

    visit(value, spec.root)
    return Placement(items)


def per_output(value: Any, spec: OutputSpec, argument: str, *, broadcast: bool = True,
               is_leaf: Any = None, shown: Any = None) -> list[Any]:
    """One value per output (None where none is given); see ``place``."""
    placement = place(value, spec, argument, is_leaf=is_leaf, shown=shown)
    if not broadcast:
        for node, v in placement.items:
            if len(node.outputs) > 1:
                raise ValueError(
                    f"`{argument}` gives one value {describe(v)} for "
                    f"{'the model' if node is spec.root else repr(node.name)} whose outputs "
                    f"are {_outputs_of(spec, node)}; give one per output (a list by position "
                    "or a dict by output name)."
                )
    return placement.per_output(spec)
