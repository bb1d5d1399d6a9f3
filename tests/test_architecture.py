"""The layering DESIGN.md states, checked on the source: no import cycles, and framework
imports (jax, flax, optax, torch) only where they are allowed.

The import graph is read with ``ast`` from every module of ``src/kompile``, imports inside
functions (lazy imports) included; only imports under ``if TYPE_CHECKING:`` are left out
(they never run). An edge ``a -> b`` means module ``a`` imports module ``b`` or a name from
it; ``from . import x`` where ``x`` is a submodule is an edge to the submodule.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "kompile"
FRAMEWORKS = ("jax", "jaxlib", "flax", "optax", "torch")

# Modules outside backends/ and ops.py that import a framework, each for a reason. Keep this
# list short: a new entry needs a reason here and in docs/architecture.md.
FRAMEWORK_ALLOWED = {
    # the optimizer table maps names to optax factories and torch.optim classes (DESIGN.md:
    # "Optimizers are a table"); optax and torch are imported when an optimizer is built
    "kompile.optimizers", "kompile.optimizers.base", "kompile.optimizers.adam",
    "kompile.optimizers.recent",  # optax.contrib's muon and schedule-free AdamW
    # the loss scale is an immutable value registered as a jax pytree (precision.py)
    "kompile.precision",
    # kp.distribution.DataParallel describes a jax Mesh (torch DDP: backends/torch_ddp.py)
    "kompile.distribution",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, also inside functions, except under ``if TYPE_CHECKING``;
    ``importlib.import_module("name")`` with a literal name counts as ``import name``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name) \
                and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module" \
                and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            found.append(ast.Import(names=[ast.alias(name=node.args[0].value)]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(name: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             modules: dict[str, Path]) -> list[str]:
    """The absolute module names one import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    subs = [f"{origin}.{a.name}" for a in node.names if f"{origin}.{a.name}" in modules]
    # `from pkg import sub` loads the submodule (pkg is its parent, already loaded); a name
    # defined in pkg's __init__ is an edge to the package itself
    return subs if len(subs) == len(node.names) else [origin, *subs]


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (kompile's own and third-party, top-level names)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            for target in _targets(name, path.name == "__init__.py", node, modules):
                if target.startswith(PACKAGE + ".") or target == PACKAGE:
                    if target in modules and target != name:
                        edges.add(target)
                else:
                    edges.add(target.split(".")[0])
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of kompile's modules with more than one module
    (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue  # third-party
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_import_graph_is_read():
    graph = import_graph()
    # a few edges everybody knows exist: the reader must see them
    assert "kompile.loop" in graph["kompile.model.training"]
    assert "kompile.backends.jax" in graph["kompile.model.backend_choice"]  # a lazy import
    assert "jax" in graph["kompile.backends.jax"]
    assert "kompile.structures" in graph["kompile.backends.base"]


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles between modules (lazy imports count): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_frameworks_only_in_backends_ops_and_the_documented_list():
    graph = import_graph()
    offenders = {}
    for name, edges in graph.items():
        if name.startswith("kompile.backends") or name == "kompile.ops":
            continue
        used = sorted(e for e in edges if e in FRAMEWORKS)
        if used and name not in FRAMEWORK_ALLOWED:
            offenders[name] = used
    assert not offenders, (
        "modules outside backends/ and ops.py importing a framework (move the code behind the "
        f"backend interface, or document the reason in FRAMEWORK_ALLOWED): {offenders}")


def test_the_allow_list_has_no_stale_entries():
    graph = import_graph()
    stale = [m for m in FRAMEWORK_ALLOWED
             if m not in graph or not any(e in FRAMEWORKS for e in graph[m])]
    assert not stale, f"FRAMEWORK_ALLOWED names modules that import no framework: {stale}"


MAX_FUNCTION_LINES = 60  # lines of code: no docstring, comment or blank line


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        if len(body) == 1:
            return 0
        first = body[1]
    code = lines[first.lineno - 1:node.end_lineno]
    return sum(1 for line in code if line.strip() and not line.strip().startswith("#"))


def test_no_function_over_60_lines_of_code():
    long = []
    for name, path in _modules().items():
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _code_lines(node, lines)
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines of code (split them by " \
        f"concept): {long}"
