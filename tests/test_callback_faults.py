"""Faults around callbacks and files (issue 13 items 4 and 7, issue 16 item 8).

NaN in a monitored value, a validation generator that runs out, corrupt and foreign files,
a backup from a different run, path conflicts, file permissions under the umask, names that
promise another format, files closed when fit ends by an exception, and a kompile file
loaded into a plain torch module. Expected values are hand-computed (the save/stop epochs
Keras's rules give) or come from safetensors/torch themselves.
"""

import json
import os
import re
import warnings

import numpy as np
import pytest

import kompile as kp
from kompile import saving

from . import models


def _data(n=8, n_in=4):
    r = np.random.default_rng(0)
    x = r.normal(size=(n, n_in)).astype(np.float32)
    return x, (x @ r.normal(size=(n_in, 1))).astype(np.float32)


def _model(backend, lr=0.1):
    return kp.Model(models.build(backend, "linear")).compile(kp.optimizers.SGD(lr), "mse")


def _scripted(values, key="val_score"):
    def on_epoch_end(epoch, logs):
        logs[key] = values[epoch]

    return kp.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


class _Interrupt(Exception):
    pass


class _CrashAt(kp.Callback):
    def __init__(self, epoch, batch=None):
        super().__init__()
        self.at, self.epoch = (epoch, batch), -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise _Interrupt

    def on_epoch_end(self, epoch, logs=None):
        if self.at == (epoch, None):
            raise _Interrupt


# ----------------------------------------------------------------------------- NaN monitors


def test_nan_is_no_improvement(backend, tmp_path):
    x, y = _data()
    nan = float("nan")
    # ModelCheckpoint(save_best_only): a NaN first value must not block later saves
    ckpt = kp.callbacks.ModelCheckpoint(str(tmp_path / "c-{epoch}.safetensors"),
                                        monitor="val_score", mode="min", save_best_only=True,
                                        save_weights_only=True)
    _model(backend).fit(x, y, epochs=5, verbose=0,
                        callbacks=[_scripted([nan, 2.0, nan, 3.0, 1.0]), ckpt])
    assert sorted(os.listdir(tmp_path)) == ["c-2.safetensors", "c-5.safetensors"]
    # EarlyStopping: NaN epochs count as epochs without improvement
    stop = kp.callbacks.EarlyStopping(monitor="val_score", mode="min", patience=2)
    hist = _model(backend).fit(x, y, epochs=6, verbose=0,
                               callbacks=[_scripted([1.0, nan, nan, 0.5, 0.4, 0.3]), stop])
    assert hist.epoch == [0, 1, 2] and stop.best == 1.0
    stop = kp.callbacks.EarlyStopping(monitor="val_score", mode="max", patience=1)
    hist = _model(backend).fit(x, y, epochs=4, verbose=0,
                               callbacks=[_scripted([nan, 1.0, 2.0, 0.0]), stop])
    assert hist.epoch == [0, 1, 2, 3] and stop.best == 2.0  # NaN first: stop not yet
    # ReduceLROnPlateau: a NaN epoch is a plateau epoch
    lrs = []
    reduce = kp.callbacks.ReduceLROnPlateau(monitor="val_score", mode="min", patience=1,
                                            factor=0.5, min_delta=0.0)
    model = _model(backend, lr=0.1)
    record = kp.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: lrs.append(round(model.learning_rate, 6)))
    model.fit(x, y, epochs=4, verbose=0,
              callbacks=[_scripted([1.0, nan, 0.5, nan]), reduce, record])
    assert lrs == [0.1, 0.05, 0.05, 0.025]


def test_exhausted_validation_generator_logs_no_val(backend, tmp_path):
    x, y = _data()

    def two_batches():
        for i in range(2):
            yield x[4 * i:4 * i + 4], y[4 * i:4 * i + 4]

    ckpt = kp.callbacks.ModelCheckpoint(str(tmp_path / "best-{epoch}.safetensors"),
                                        save_best_only=True, save_weights_only=True)
    seen = []
    spy = kp.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(sorted(logs)))
    with pytest.warns(kp.KompileWarning, match="Can save best model only with val_loss "
                                                  "available; saving anyway"), \
            pytest.warns(UserWarning, match="validation data ran out: no batch was left for "
                                            "epoch [23], so it logs no val_"):  # epochs 2, 3
        hist = _model(backend).fit(x, y, batch_size=4, epochs=3, verbose=0,
                                   validation_data=two_batches(), callbacks=[ckpt, spy])
    assert seen == [["loss", "val_loss"], ["loss"], ["loss"]]
    assert len(hist.history["val_loss"]) == 1 and hist.history["val_loss"][0] > 0
    # epochs 2 and 3 have no val_loss: saved anyway with a warning, as Keras 3 does (never
    # compared as if val_loss were 0.0)
    assert sorted(os.listdir(tmp_path)) == [f"best-{e}.safetensors" for e in (1, 2, 3)]


# ----------------------------------------------------------------------------- corrupt files


def _foreign_files(folder):
    from safetensors.numpy import save_file

    files = {
        "empty": b"",
        "text": b"not a safetensors file at all",
        "hdf5": b"\x89HDF\r\n\x1a\n" + bytes(64),
        "zip": b"PK\x03\x04" + bytes(64),
        "pickle": b"\x80\x04\x95" + bytes(64),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.safetensors"
        paths[name].write_bytes(data)
    ok = {"kernel": np.zeros((4, 1), np.float32), "bias": np.zeros(1, np.float32)}
    for name, meta in (("json", "{not json"), ("list", "[1, 2]"),
                       ("format", json.dumps({"format": "other.thing"})),
                       ("views", json.dumps({"format": "kompile.weights",
                                             "views": {"ghost": "bfloat16"}}))):
        paths[name] = folder / f"{name}.safetensors"
        save_file(ok, str(paths[name]), metadata={"kompile": meta})
    good = folder / "good.safetensors"
    save_file(ok, str(good), metadata={"kompile": json.dumps({"format": "kompile.weights"})})
    paths["truncated"] = folder / "truncated.safetensors"
    paths["truncated"].write_bytes(good.read_bytes()[:-3])
    return paths


REASONS = {"empty": "the file is empty", "text": "it is not a safetensors file",
           "hdf5": "HDF5 file", "zip": "zip archive", "pickle": "pickle",
           "json": "metadata is not valid JSON", "list": "not a JSON object",
           "format": "unknown format 'other.thing'", "views": "names arrays the file does not",
           "truncated": "truncated or corrupt"}


def test_corrupt_files_get_a_clear_error(backend, tmp_path):
    model = _model(backend)
    for name, path in _foreign_files(tmp_path).items():
        with pytest.raises(ValueError, match=f"'{path}' is not a valid kompile file: .*"
                                             f"{REASONS[name]}"):
            model.load_weights(path)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        model.load_weights(tmp_path)


def test_backup_rejects_corrupt_and_foreign_files(backend, tmp_path):
    x, y = _data()
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "backup.safetensors").write_bytes(b"\x00garbage")
    model = _model(backend)
    with pytest.raises(ValueError, match="is not a valid kompile file: it is not a safetensors"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[kp.callbacks.BackupAndRestore(str(backup))])
    # a full ModelCheckpoint file is a training state, but not a backup
    model.fit(x, y, epochs=1, verbose=0, callbacks=[
        kp.callbacks.ModelCheckpoint(str(backup / "backup.safetensors"))])
    with pytest.raises(ValueError, match="not a valid kompile file: info.step: missing or "
                                         "not an integer; it holds no BackupAndRestore backup"):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[kp.callbacks.BackupAndRestore(str(backup))])


def test_backup_refuses_a_different_run(backend, tmp_path):
    x, y = _data(16)
    folder = str(tmp_path / "backup")

    def run(batch_size, spe=1, crash=None):
        model = kp.Model(models.build(backend, "linear")).compile(
            kp.optimizers.SGD(0.1), "mse", steps_per_execution=spe)
        cbs = [kp.callbacks.BackupAndRestore(folder, save_freq=2)]
        cbs += [_CrashAt(*crash)] if crash else []
        return model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, shuffle=False,
                         callbacks=cbs)

    with pytest.raises(_Interrupt):
        run(4, crash=(1, 2))  # backed up after batch 1 of epoch 2
    weights_before = open(os.path.join(folder, "backup.safetensors"), "rb").read()
    with pytest.raises(ValueError, match=r"different run: batch_size=4 then, 2 now.*delete the "
                                         "backup directory"):
        run(2)
    with pytest.raises(ValueError, match="different run: steps_per_execution=1 then, 2 now"):
        run(4, spe=2)
    with pytest.raises(ValueError, match="samples=16 then, 12 now"):
        x, y = x[:12], y[:12]
        run(4)
    assert open(os.path.join(folder, "backup.safetensors"), "rb").read() == weights_before
    x, y = _data(16)
    hist = run(4)  # the same run resumes
    assert hist.epoch == [0, 1] and not os.path.exists(folder)


# ----------------------------------------------------------------------------- paths


def test_path_conflicts_fail_before_training(backend, tmp_path):
    x, y = _data()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    batches = []
    count = kp.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    cases = [
        (kp.callbacks.BackupAndRestore(str(blocker)), "BackupAndRestore: `backup_dir`"),
        (kp.callbacks.BackupAndRestore(str(blocker / "sub")), "is a file"),
        (kp.callbacks.ModelCheckpoint(str(blocker / "ckpt-{epoch}.safetensors")),
         "ModelCheckpoint: `filepath` needs the directory"),
        (kp.callbacks.ModelCheckpoint(str(tmp_path)), "`filepath` .* is a directory"),
        (kp.callbacks.CSVLogger(str(blocker / "log.csv")), "CSVLogger: `filename`"),
        (kp.callbacks.CSVLogger(str(tmp_path)), "CSVLogger: `filename` .* is a directory"),
        (kp.callbacks.TensorBoard(str(blocker)), "TensorBoard: `log_dir`"),
    ]
    for cb, message in cases:
        with pytest.raises(ValueError, match=message):
            _model(backend).fit(x, y, epochs=1, verbose=0, callbacks=[count, cb])
    assert batches == []  # every conflict surfaced before the first batch


def test_written_files_follow_the_umask(backend, tmp_path):
    x, y = _data()
    model = _model(backend)
    old = os.umask(0o022)
    try:
        model.save_weights(tmp_path / "a.safetensors")
        model.fit(x, y, epochs=1, verbose=0, callbacks=[
            kp.callbacks.ModelCheckpoint(str(tmp_path / "c.safetensors"))])
        os.umask(0o077)
        model.save_weights(tmp_path / "b.safetensors")
        os.chmod(tmp_path / "a.safetensors", 0o640)
        model.save_weights(tmp_path / "a.safetensors")  # replacing keeps the file's mode
    finally:
        os.umask(old)
    modes = {n: os.stat(tmp_path / n).st_mode & 0o777
             for n in ("a.safetensors", "b.safetensors", "c.safetensors")}
    assert modes == {"a.safetensors": 0o640, "b.safetensors": 0o600, "c.safetensors": 0o644}


def test_names_of_other_formats_are_refused(backend, tmp_path):
    model = _model(backend)
    for name, suggested in (("w.h5", "w.safetensors"), ("m.weights.h5", "m.safetensors"),
                            ("model.keras", "model.safetensors"), ("W.HDF5", "W.safetensors")):
        with pytest.raises(ValueError, match=f"kompile writes safetensors files. Name it "
                                             f"'[^']*/{re.escape(suggested)}'"):
            model.save_weights(tmp_path / name)
    for name in ("w.pt", "w.pth"):
        with pytest.raises(ValueError, match=r"torch.load cannot read it: load it into a plain "
                                             r"torch module with module.load_state_dict\("
                                             r"safetensors.torch.load_file\(path\)\)"):
            model.save_weights(tmp_path / name)
    with pytest.raises(ValueError, match="`filepath` is 'best-{epoch}.keras'"):
        kp.callbacks.ModelCheckpoint("best-{epoch}.keras")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- closing files


def test_loggers_close_their_files_when_fit_fails(backend, tmp_path):
    x, y = _data()
    csv_logger = kp.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    board = kp.callbacks.TensorBoard(str(tmp_path / "tb"))
    with pytest.raises(_Interrupt):
        _model(backend).fit(x, y, epochs=3, verbose=0,
                            callbacks=[csv_logger, board, _CrashAt(1)])
    assert csv_logger._file.closed and board._writers == {}
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,loss") and len(rows) == 3  # header, epochs 0 and 1
    with pytest.raises(_Interrupt):
        _model(backend).fit(x, y, epochs=3, verbose=0,
                            callbacks=[csv_logger, _CrashAt(0, 0)])  # before any epoch ended
    assert csv_logger._file.closed


# ----------------------------------------------------------------------------- plain torch


def test_kompile_files_load_into_a_plain_torch_module(tmp_path):
    """The README recipe: safetensors.torch.load_file + load_state_dict, no kompile."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    x, y = _data()
    y = np.concatenate([y, -y], axis=1)  # the model has two outputs per sample
    module = models.build("torch", "dropout_bn")
    model = kp.Model(module).compile("adam", "mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[
        kp.callbacks.ModelCheckpoint(str(tmp_path / "full.safetensors"))])
    model.save_weights(tmp_path / "weights.safetensors")
    want = model.predict(x, verbose=0)
    weights = load_file(str(tmp_path / "weights.safetensors"))
    full = load_file(str(tmp_path / "full.safetensors"))
    from_full = {k.removeprefix("weights/"): v for k, v in full.items()
                 if k.startswith("weights/")}
    for state in (weights, from_full):
        plain = models.build("torch", "dropout_bn")
        plain.load_state_dict(state)  # strict: every key of the module, nothing else
        plain.eval()
        with torch.no_grad():
            got = plain(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_no_stray_warnings_on_a_clean_fit(backend, tmp_path):
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model(backend).fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[
            kp.callbacks.ModelCheckpoint(str(tmp_path / "ck" / "b.safetensors"),
                                         save_best_only=True),
            kp.callbacks.CSVLogger(str(tmp_path / "logs" / "l.csv")),
            kp.callbacks.BackupAndRestore(str(tmp_path / "bk"))])
    # save_weights_only=False writes a whole-model file (kp.load_model reads it)
    assert saving.load_arrays(tmp_path / "ck" / "b.safetensors")[1]["format"] == "kompile.model"
