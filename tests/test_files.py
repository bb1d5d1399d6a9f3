"""Files (issue 20, item 6): every field checked, bounded JSON, backups in range, stale
temporary files removed, long names, bytes and PathLike paths, one name rule for every
writer, and a backup given to load_model says how to resume from it.

Damaged files are written with safetensors' own writer (not kompile's), so each test
shows what a hand-edited or hostile file does.
"""

import json
import os
import pathlib
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import kompile as kp
from kompile import saving

from . import models


def _data(n=16):
    r = np.random.default_rng(0)
    x = r.normal(size=(n, 4)).astype(np.float32)
    return x, (x @ np.ones((4, 2), np.float32))


def _model(backend):
    return kp.Model(models.build(backend, "linear", n_in=4, n_out=2)).compile(
        kp.optimizers.SGD(0.1), "mse")


def _trained(backend):
    model = _model(backend)
    model.fit(*_data(), batch_size=8, epochs=2, verbose=0)
    return model


def _rewrite(path, edit):
    """Rewrite the kompile metadata of ``path`` with ``edit(meta)`` (a dict or a string)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        meta = json.loads(f.metadata()["kompile"])
    arrays = load_file(str(path))
    new = edit(meta)
    save_file(arrays, str(path), metadata={"kompile": new if isinstance(new, str)
                                           else json.dumps(new)})


def _invalid(path, field):
    return pytest.raises(ValueError, match=f"'{path}' is not a valid kompile file: {field}: ")


# ----------------------------------------------------------------------------- fields
MODEL_DAMAGE = [  # (the field named, how the metadata is damaged)
    ("compile_config", lambda m: {k: v for k, v in m.items() if k != "compile_config"}),
    ("compile_config", lambda m: {**m, "compile_config": {"bogus": 1}}),
    ("compile_config", lambda m: {**m, "compile_config": {**m["compile_config"], "loss": 5}}),
    ("info", lambda m: {**m, "info": [1, 2]}),
    ("info.history", lambda m: {**m, "info": {"epoch": 2, "history": []}}),
    ("info.history.epoch", lambda m: {**m, "info": {"epoch": 2, "history": {
        "epoch": [0, "x"], "history": {}}}}),
    (r"info.history.history\['loss'\]", lambda m: {**m, "info": {"epoch": 2, "history": {
        "epoch": [0, 1], "history": {"loss": "high"}}}}),
    ("output_names", lambda m: {**m, "output_names": {"a": 1}}),
    ("dtype_policy", lambda m: {**m, "dtype_policy": 16}),
    ("backend", lambda m: {**m, "backend": "tensorflow"}),
    ("views", lambda m: {**m, "views": [1]}),
    ("format", lambda m: {**m, "format": 3}),
    ("metadata", lambda m: "[" * 100_000 + "]" * 100_000),  # RecursionError before
    ("metadata", lambda m: '{"a": ' + "[" * 40 + "]" * 40 + "}"),
]


def test_damaged_model_file_fields_are_named(tmp_path):
    model = _trained("jax")
    path = tmp_path / "m.safetensors"
    for field, damage in MODEL_DAMAGE:
        model.save(path)
        _rewrite(path, damage)
        with _invalid(path, field):
            kp.load_model(path, models.build("jax", "linear", n_in=4, n_out=2))


def test_training_state_fields_are_named(backend, tmp_path):
    model = _trained(backend)
    path = tmp_path / "c.safetensors"
    cb = kp.callbacks.ModelCheckpoint(str(path))
    model.fit(*_data(), epochs=1, verbose=0, callbacks=[cb])
    _rewrite(path, lambda m: {**m, "info": {"epoch": -1}})
    with _invalid(path, "info.epoch"):
        saving.load_training_state(model, path)


def test_header_size_is_bounded(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b'{"a": 1}')
    with _invalid(path, "header"):
        _model("jax").load_weights(path)
    path.write_bytes(struct.pack("<Q", 1000) + b'{"a": 1}')  # beyond the end of the file
    with pytest.raises(ValueError, match="header: it declares 1000 bytes but the file holds"):
        _model("jax").load_weights(path)


# ----------------------------------------------------------------------------- backups
def _backup(backend, folder, epochs=2):
    cb = kp.callbacks.BackupAndRestore(folder, delete_checkpoint=False)
    _model(backend).fit(*_data(), batch_size=8, epochs=epochs, verbose=0, callbacks=[cb])
    return folder / "backup.safetensors"


@pytest.mark.parametrize("field,edit", [
    ("info.epoch", lambda i: {**i, "epoch": -3}),
    ("info.step", lambda i: {**i, "step": -1}),
    ("info.history.epoch", lambda i: {**i, "history": {"epoch": [0, 5], "history": {}}}),
    ("info.numpy_rng", lambda i: {**i, "numpy_rng": ["a", 0, 0]}),
    ("info.data.train", lambda i: {**i, "data": {"train": {"pos": -2, "started": True,
                                                           "rng": None}}}),
])
def test_backup_fields_are_refused(tmp_path, field, edit):
    path = _backup("jax", tmp_path / "b")
    _rewrite(path, lambda m: {**m, "info": edit(m["info"])})
    with _invalid(path, field):
        _model("jax").fit(*_data(), batch_size=8, epochs=4, verbose=0,
                          callbacks=[kp.callbacks.BackupAndRestore(tmp_path / "b")])


def test_backup_beyond_the_run_is_refused(backend, tmp_path):
    _backup(backend, tmp_path / "b", epochs=3)
    with pytest.raises(ValueError, match=r"stands at epoch 3 \(step 0\), outside this fit\(\) "
                                         "of 2 epochs"):
        _model(backend).fit(*_data(), batch_size=8, epochs=2, verbose=0,
                            callbacks=[kp.callbacks.BackupAndRestore(tmp_path / "b")])


def test_load_model_and_load_weights_on_a_backup_say_how_to_resume(backend, tmp_path):
    path = _backup(backend, tmp_path / "b")
    folder = repr(str(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"is a BackupAndRestore backup.*model.fit\(\.\.\., "
                       rf"callbacks=\[kp.callbacks.BackupAndRestore\({folder}\)\]\)"):
        kp.load_model(path, models.build(backend, "linear", n_in=4, n_out=2))
    with pytest.raises(ValueError, match=rf"BackupAndRestore\({folder}\)"):
        _model(backend).load_weights(path)


# ----------------------------------------------------------------------------- names
def test_stale_temporary_files_of_the_target_are_removed(tmp_path):
    model = _model("jax")
    stale = tmp_path / ".tmp-w.safetensors-abcd1234"  # a killed save of w.safetensors
    other = tmp_path / ".tmp-w.safetensors-x-abcd1234"  # one of "w.safetensors-x"
    stale.write_bytes(b"partial")
    other.write_bytes(b"partial")
    model.save_weights(tmp_path / "w.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "w.safetensors"]


def test_long_names_and_every_path_type(backend, tmp_path):
    model = _trained(backend)
    want = model.get_weights()
    long = "w" * (250 - len(".safetensors")) + ".safetensors"  # 250 characters: valid
    for path in (tmp_path / long, str(tmp_path / "s.safetensors"),
                 os.fsencode(tmp_path / "b.safetensors"), pathlib.PurePath(tmp_path / "p.sft")):
        model.save_weights(path)
        fresh = _model(backend)
        fresh.load_weights(path)
        for got, ref in zip(fresh.get_weights(), want, strict=True):
            np.testing.assert_array_equal(got, ref)
        model.save(path)
        kp.load_model(path, models.build(backend, "linear", n_in=4, n_out=2))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(TypeError, match="`filepath` must be a file path .* received int"):
        model.save_weights(5)
    folder = os.fsencode(tmp_path / "ck")
    model.fit(*_data(), epochs=1, verbose=0, callbacks=[
        kp.callbacks.ModelCheckpoint(folder + b"/c.safetensors", save_weights_only=True),
        kp.callbacks.BackupAndRestore(folder + b"/backup", delete_checkpoint=False)])
    assert sorted(os.listdir(tmp_path / "ck")) == ["backup", "c.safetensors"]


@pytest.mark.parametrize("name,advice", [("m.keras", "m.safetensors"), ("m.h5", "m.safetensors"),
                                         ("m", "m.safetensors")])
def test_save_and_save_weights_share_the_name_rule(tmp_path, name, advice):
    model = _trained("jax")
    for write in (model.save, model.save_weights):
        with pytest.raises(ValueError, match=f"kompile writes safetensors files.* [Nn]ame it "
                                             f"'[^']*/{advice}'"):
            write(tmp_path / name)
    assert os.listdir(tmp_path) == []
