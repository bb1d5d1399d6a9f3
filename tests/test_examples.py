"""Runs each ported example program in ``examples/`` briefly (``--quick``), as a user would.

Each program runs in its own process (a fresh interpreter, as ``python examples/x.py``) with this
checkout's ``src`` first on the path; the test passes when the program exits 0 and prints its
final line and leaves no file behind. ``digits_demo.py`` is the README demo (``make demo``, 15
epochs) and is not one of the ported programs. CPU time is about 8 s per program.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# program -> (backend module it needs, text its last lines print, xfail reason or None)
EXAMPLES = {
    "keras_mnist_convnet.py": ("flax", "Test accuracy:", None),
    "keras_imbalanced_classification.py": ("torch", "Validation:", None),
    "keras_timeseries_classification.py": ("flax", "Test accuracy", None),
    "keras_text_classification.py": ("torch", "test accuracy", None),
    "flax_mnist.py": ("flax", "test_accuracy:", None),
    "pytorch_mnist.py": ("torch", "Test set:", None),
    "keras_sklearn_metric_callbacks.py": ("torch", "Final jaccard_score:", None),
    "keras_timeseries_anomaly_detection.py": ("flax", "Anomalous data points:", None),
}


def _params():
    for name, (needs, _, reason) in EXAMPLES.items():
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(name, needs, marks=marks, id=name.removesuffix(".py"))


@pytest.mark.parametrize("name,needs", list(_params()))
def test_example_runs(name, needs, tmp_path):
    pytest.importorskip(needs)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), "--quick"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert EXAMPLES[name][1] in proc.stdout, output[-3000:]
    assert list(tmp_path.iterdir()) == [], "the example left files in the working directory"


def test_every_example_is_tested():
    programs = {p.name for p in (ROOT / "examples").glob("*.py")} - {"digits_demo.py"}
    assert programs == set(EXAMPLES)


def test_every_example_names_its_source():
    for name in EXAMPLES:
        head = (ROOT / "examples" / name).read_text().split('"""')[1]
        assert "Source:" in head and "Changed:" in head, name
