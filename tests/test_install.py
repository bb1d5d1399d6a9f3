"""Install what you use: kompile imports and trains with only one backend installed.

Each case runs a fresh interpreter whose only site-packages is a view of this environment's
(symlinks) without the other backend's distributions, so ``import jax`` (or ``import
torch``) fails as it does where the package was never installed, and
``importlib.util.find_spec`` returns None for it. (A clean virtual environment with
``pip install .[jax]`` / ``.[torch]`` was checked by hand; see the README.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABSENT = {
    "jax": ("jax", "jaxlib", "jax_", "flax", "optax", "chex", "orbax"),
    "torch": ("torch", "torchgen", "functorch", "triton"),
}

SCRIPTS = {
    "torch": """
        import numpy as np, torch, kompile as kp
        module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        model = kp.Model(module).compile("adam", "sparse_categorical_crossentropy")
    """,
    "jax": """
        import numpy as np, kompile as kp
        from flax import nnx
        model = kp.Model(nnx.Linear(4, 2, rngs=nnx.Rngs(0))).compile(
            "adam", "sparse_categorical_crossentropy")
    """,
}

CHECK = """
    import importlib.util
    assert importlib.util.find_spec({absent!r}) is None, "the other backend is installed"
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(x, (x[:, 0] > 0).astype(np.int32), epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (32, 2)
    print("ok")
"""


def _view(tmp_path: Path, absent: tuple[str, ...]) -> Path:
    """This environment's site-packages without the distributions named in ``absent``
    (and without kompile itself, which comes from this checkout's src/)."""
    site = Path(sysconfig.get_paths()["purelib"])
    view = tmp_path / "site-packages"
    view.mkdir()
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(absent + ("kompile", "__editable__")) or name.endswith(".pth"):
            continue
        (view / entry.name).symlink_to(entry)
    return view


def _run_without(tmp_path: Path, other: str, code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that cannot import the ``other`` backend."""
    view = _view(tmp_path, ABSENT[other])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KERAS"))}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(view)]), JAX_PLATFORMS="cpu",
               PYTHONNOUSERSITE="1")
    check = f"import importlib.util\nassert importlib.util.find_spec({other!r}) is None\n"
    return subprocess.run([sys.executable, "-S", "-c", check + code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("installed", ["torch", "jax"])
def test_one_backend_installed(tmp_path, installed):
    other = "jax" if installed == "torch" else "torch"
    if installed == "torch":
        pytest.importorskip("torch")
    code = textwrap.dedent(SCRIPTS[installed]) + textwrap.dedent(CHECK.format(absent=other))
    out = _run_without(tmp_path, other, code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def _readme_quick_starts() -> dict[str, str]:
    """The README's quick starts by backend: its ```python blocks under "Quick start"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = {}
    for title, body in re.findall(r"^## (Quick start with [^\n]*)\n(.*?)(?=^## )", text,
                                  re.S | re.M):
        block = re.search(r"^```python\n(.*?)^```", body, re.S | re.M)
        found["torch" if "PyTorch" in title else "jax"] = block.group(1)
    return found


@pytest.mark.parametrize("installed", ["torch", "jax"])
def test_readme_quick_start_runs_with_only_its_backend(tmp_path, installed):
    """Each README quick start runs where only its backend is installed, and prints what the
    README shows: an evaluation line and the predictions' shape."""
    if installed == "torch":
        pytest.importorskip("torch")
    code = _readme_quick_starts()[installed]
    out = _run_without(tmp_path, "jax" if installed == "torch" else "torch", code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"^loss \d\.\d{3}, accuracy 0\.(8|9)\d\d$", out.stdout, re.M), out.stdout
    assert "Epoch 3/3" in out.stdout and "val_accuracy" in out.stdout, out.stdout
