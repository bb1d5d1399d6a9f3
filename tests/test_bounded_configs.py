"""Bounded configs (issue 20, item 7): a size read from a config is checked before any
allocation. The sizes are hostile values from the fault probe: a 101-byte compile config
whose target_tensors dtype is ``(100000000,)f8`` (766 MB), and AUC(num_thresholds=10**9).
"""

import resource

import numpy as np
import pytest

import kompile as kp

from . import models


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_target_tensors_dtype_from_a_config_is_refused_before_allocating():
    config = {"optimizer": "sgd", "loss": "mse",
              "target_tensors": [{"array": [0.0], "dtype": "(100000000,)f8"}]}
    model = kp.Model(models.build("jax", "linear", n_in=2, n_out=1))
    model.compile_from_config({"optimizer": "sgd", "loss": "mse"})  # imports done
    before = _peak_mb()
    with pytest.raises(ValueError, match=r"`target_tensors\[0\]` has dtype '\(100000000,\)f8'; "
                                         "expected the name of a scalar"):
        model.compile_from_config(config)
    assert _peak_mb() - before < 200  # the bomb would add 766 MB
    for bad, match in (({"array": "x", "dtype": "float32"}, "holds str"),
                       ({"array": [[1.0], [1.0, 2.0]], "dtype": "float32"}, "not a rectangular"),
                       ({"array": [1], "dtype": "object"}, "has dtype 'object'")):
        with pytest.raises(ValueError, match=match):
            model.compile_from_config({**config, "target_tensors": [bad]})
    # a sound one still loads (numbers as NumPy reads them)
    ok = {**config, "target_tensors": [{"array": [[1.5]], "dtype": "float32"}]}
    model.compile_from_config(ok)
    np.testing.assert_array_equal(model.get_compile_config()["target_tensors"][0]["array"],
                                  [[1.5]])


@pytest.mark.parametrize("kwargs,match", [
    ({"num_thresholds": 10**9}, "`num_thresholds`: expected an integer from 2 to 1000000"),
    ({"num_thresholds": 200.5}, "`num_thresholds`: expected an integer"),
    ({"num_thresholds": True}, "`num_thresholds`: expected an integer"),
    ({"multi_label": True, "num_labels": 10**9}, "`num_labels`: expected None or an integer"),
])
def test_auc_sizes_from_a_config_are_bounded(kwargs, match):
    before = _peak_mb()
    config = kp.metrics.serialize(kp.metrics.AUC())
    config["config"].update(kwargs)
    with pytest.raises(ValueError, match=match):
        kp.metrics.deserialize(config)
    assert _peak_mb() - before < 200
    assert kp.metrics.AUC(num_thresholds=10**6).num_thresholds == 10**6
