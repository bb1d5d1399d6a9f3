"""The cryptic messages of issue 20 (item 8), each now naming what is wrong."""

import numpy as np
import pytest

import kompile as kp

from . import models


def test_weighted_metrics_of_the_wrong_type_names_weighted_metrics(backend):
    model = kp.Model(models.build(backend, "mlp"))
    with pytest.raises(TypeError, match="Argument `weighted_metrics` must be a list of metrics"):
        model.compile("sgd", "mse", weighted_metrics=5)


def test_a_file_where_the_folder_belongs(backend, tmp_path):
    (tmp_path / "afile").write_text("x")
    model = kp.Model(models.build(backend, "linear", n_in=2, n_out=1)).compile("sgd", "mse")
    model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0)
    for write in (model.save, model.save_weights):
        with pytest.raises(ValueError, match=r"save: `filepath` needs the directory '.*afile', "
                                             r"but '.*afile' is a file"):
            write(tmp_path / "afile" / "m.safetensors")


def test_one_hot_targets_with_a_sparse_loss_say_what_differs(backend):
    model = kp.Model(models.build(backend, "mlp", n_in=4, hidden=4, n_out=3)).compile(
        "sgd", "sparse_categorical_crossentropy")
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    with pytest.raises(ValueError, match=r"The shapes are equal, but "
                       r"'sparse_categorical_crossentropy' takes per-sample shape \(\) or "
                       r"\(1,\) \(one integer class index per sample\).*categorical_crossentropy"):
        model.fit(np.zeros((4, 4), np.float32), y, verbose=0)


def test_a_torch_module_on_the_meta_device_is_refused_at_fit():
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        module = torch.nn.Linear(4, 2)
    model = kp.Model(module).compile("adam", "mse")
    with pytest.raises(ValueError, match=r"variable\(s\) \['weight', 'bias'\] are on the "
                                         r"'meta' device.*module.to_empty\(device='cpu'\)"):
        model.fit(np.zeros((8, 4), np.float32), np.zeros((8, 2), np.float32), verbose=0)
