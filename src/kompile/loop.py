"""The one training loop: fit, evaluate and predict, written once for every backend.

The loop owns epochs, batching (through the data entry point), callbacks and logs; the
backend owns state and steps. Per call the loop does no host sync unless a callback or
the progress bar reads the batch logs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from . import agreement, calling, execution, train_checks
from . import data as data_mod
from .backends.base import Backend
from .callbacks.base import CallbackList, History, LazyLogs, host_logs
from .callbacks.misc import TerminateOnNaN
from .callbacks.progbar import ProgbarLogger, resolve_verbose
from .compile import loss_outputs
from .data.batch_checks import BatchChecker, output_probe
from .fit_run import FitRun
from .targets import class_weights_to_sample_weights, flatten_targets, flatten_weights


def _check_file_callbacks(model: Any, callbacks: Any) -> None:
    """Callbacks that write files run on process 0 only, so they cannot read a state split
    across processes (a collective): an error on every process rather than a hang."""
    if not model._backend.split_across_processes:
        return
    listed = callbacks if isinstance(callbacks, list | tuple) else [callbacks]
    writers = [type(cb).__name__ for cb in listed if getattr(cb, "writes_files", False)]
    if writers:
        raise ValueError(
            f"{', '.join(writers)} cannot save a model whose parameters are sharded across "
            "processes (it runs on process 0 only, and gathering the shards needs every "
            "process). Call model.save(...) / model.save_weights(...) on every process "
            "between fit calls instead (process 0 writes the file).")


def _callbacks(model: Any, callbacks: Any, verbose: int, params: dict[str, Any],
               history: History | None = None) -> CallbackList:
    _check_file_callbacks(model, callbacks)
    if model._backend.process_index != 0:
        # several processes: only process 0 prints and writes files
        verbose = 0
        callbacks = callbacks if isinstance(callbacks, list | tuple) else [callbacks]
        callbacks = [cb for cb in callbacks if cb is not None
                     and not getattr(cb, "writes_files", False)]
    cbs = CallbackList(callbacks, model, params)
    if history is not None:
        history.set_params(params)
        cbs.append(history)
    if verbose and not any(isinstance(cb, ProgbarLogger) for cb in cbs.callbacks):
        bar = ProgbarLogger(verbose)
        bar.set_params(params)
        cbs.append(bar)
    for cb in cbs.callbacks:
        cb.set_model(model)
    return cbs


def _first_forward(model: Any, source: Any) -> Any:
    """The output spec from the first batch; integer `x` into a float torch module gets a
    clear error (data/checks.py) instead of torch's dtype message."""
    x = source.peek_x()
    try:
        return model._output_spec(x)
    except Exception as err:
        hint = data_mod.checks.integer_input_hint(x, model._backend.name, err)
        if hint is None:
            raise
        raise TypeError(hint) from err


def _prepare(model: Any, source: Any, class_weight: Any = None) -> bool:
    """Name the outputs, build the objective once, and flatten targets per output. Returns
    whether the checked data holds non-finite values (then a NaN loss is no surprise)."""
    spec = _first_forward(model, source)
    cfg = model._config
    if cfg is not None and cfg.loss is None and spec.model_loss is None \
            and model._objective is None:  # outputs named at a predict without labels
        fresh = model._backend.output_spec(source.peek_x())
        if fresh.model_loss is not None:
            model._spec = spec = fresh
            model._backend.set_spec(fresh)
    if isinstance(source, data_mod.ArraySource):
        model._backend.check_batch_size(source.batch_size)
    # several processes run the same thing, or all stop (agreement.py)
    model._backend.check_agreement(lambda: agreement.facts(model, source))

    with_loss = loss_outputs(model._config, spec) if model._config is not None else None

    def prepare(x: Any, y: Any, sw: Any):
        if y is None and model._config is not None and model._config.target_tensors is not None:
            y = model._target_tensors_for(x)
        ys = flatten_targets(y, spec, loss_outputs=with_loss)
        sws = flatten_weights(sw, spec)
        sws = class_weights_to_sample_weights(class_weight, ys, spec, sws)
        sws = [None if w is None else np.asarray(w, dtype=np.float32) for w in sws]
        return x, ys, sws

    ys, sws = source.prepare(prepare)
    if model._config is not None:
        first = model._objective is None
        objective = model._ensure_objective(ys)
        data_mod.checks.check_targets_given(ys, objective.data_rules(), source.batch_kind)
        try:
            objective.check(ys, sws)
        except ValueError:
            # shapes per call: an output whose shape follows the input (sequences) is
            # checked against this call's own outputs
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                shapes = model._backend.output_spec(source.peek_x()).shapes
            objective.check(ys, sws, shapes)
        # checks at the door: host data once per call (arrays whole, iterables' first batch)
        x_all, ys_all, sws_all = source.host if isinstance(source, data_mod.ArraySource) \
            else (source.peek_x(), ys, sws)
        bad = data_mod.checks.check_data(x_all, ys_all, sws_all, objective.data_rules(),
                                         single=not model._spec.multi,
                                         argument=source.argument)
        if not isinstance(source, data_mod.ArraySource):  # the next batches: each one
            rules = objective.data_rules()
            sparse = [("" if not model._spec.multi else r[0], r[3]) for r in rules]
            source.check = BatchChecker((x_all, ys, sws), sparse, output_probe(model, True),
                                        source.argument)
        if first and calling.wants_probability_check(objective):  # once per compile
            calling.check_probabilities(objective,
                                        model._backend.sample_outputs(source.peek_x()))
        return bool(bad)
    return False



def _batch_watchers(cbs: CallbackList | None, phase: str) -> bool:
    """Whether a callback observes each batch of ``phase`` ('train' or 'test'); a progress
    bar observes per call (it redraws at most every 0.1 s), so it does not count."""
    if cbs is None:
        return False
    others = [cb for cb in cbs.callbacks if not isinstance(cb, ProgbarLogger)]
    if len(others) != len(cbs.callbacks):
        cbs = CallbackList(others, others[0].model if others else None,
                           others[0].params if others else {})
    return any(cbs.wants(f"on_{phase}_batch_{when}") for when in ("begin", "end"))


def _plan(model: Any, source: Any, cbs: CallbackList | None,
          phase: str) -> execution.ExecutionPlan:
    """The batches per call of ``phase`` ('train' or 'test'): execution.py's plan, told
    whether a callback watches the phase's batches."""
    kind = "train" if phase == "train" else "eval"
    return model._execution_plan(source, kind, _batch_watchers(cbs, phase))


def _run_eval(model: Any, source: Any, cbs: CallbackList | None) -> dict | None:
    """The evaluation logs, or None when the source yielded no batch (a used-up generator)."""
    backend = model._backend
    backend.reset_metrics("eval")
    model.stop_evaluating = False
    if cbs is not None:
        cbs.call("on_test_begin", {})
    plan = _plan(model, source, cbs, "test")
    pacer = plan.pacer
    call = None
    for call in source.calls(backend, plan.per_call, shuffle=False):
        if cbs is not None:
            cbs.call("on_test_batch_begin", call.first_step, {})
        if pacer is not None:
            pacer.begin()
        for part in call.parts:
            backend.evaluate(part.feed, part.index, part.start, part.n)
        if pacer is not None:
            pacer.end(call.parts[0].n)
        if cbs is not None and cbs.wants("on_test_batch_end"):
            cbs.call("on_test_batch_end", call.last_step,
                     LazyLogs(lambda: host_logs(backend.results("eval"), backend.to_host)))
        if model.stop_evaluating:
            break
    if call is None:
        if cbs is not None:
            cbs.call("on_test_end", {})
        return None
    logs = host_logs(backend.results("eval"), backend.to_host)  # host sync: the results
    if cbs is not None:
        cbs.call("on_test_end", logs)
    return logs


def _val_due(epoch: int, freq: Any) -> bool:
    if isinstance(freq, int):
        return (epoch + 1) % freq == 0
    return (epoch + 1) in freq


def fit(model: Any, x: Any = None, y: Any = None, batch_size: Any = None, epochs: int = 1,
        verbose: Any = "auto", callbacks: Any = None, validation_split: float = 0.0,
        validation_data: Any = None, shuffle: bool = True, class_weight: Any = None,
        sample_weight: Any = None, initial_epoch: int = 0, steps_per_epoch: Any = None,
        validation_steps: Any = None, validation_batch_size: Any = None,
        validation_freq: Any = 1) -> History:
    model._require_compiled("fit")
    data_mod.checks.check_fit_arguments(
        batch_size, epochs, verbose, validation_split, shuffle, initial_epoch, steps_per_epoch,
        validation_steps, validation_batch_size, validation_freq, class_weight)
    y = model._bind_targets(x, y)  # compile-time target_tensors, split with x
    verbose = resolve_verbose(verbose)
    source = data_mod.adapt(x, y, sample_weight, batch_size=batch_size, shuffle=shuffle,
                            steps=steps_per_epoch, repeat=True)
    val_source = None
    if validation_split:
        if not isinstance(source, data_mod.ArraySource):
            raise ValueError("`validation_split` is only supported for array inputs; for "
                             "iterables pass `validation_data`.")
        train, val = data_mod.split_validation(source.raw, validation_split)
        source = data_mod.ArraySource(train["x"], train["y"], train["sample_weight"],
                                      source.batch_size, shuffle, steps_per_epoch, repeat=True)
        val_source = data_mod.ArraySource(val["x"], val["y"], val["sample_weight"],
                                          validation_batch_size or source.batch_size, False,
                                          validation_steps, repeat=True)
    elif validation_data is not None:
        val_source = data_mod.adapt_validation(
            validation_data, validation_batch_size or batch_size, validation_steps)
    backend = model._backend
    backend.refresh_from_module()
    watch = _LossWatch(_prepare(model, source, class_weight))
    if not model._objective.has_loss:
        raise ValueError("The model was compiled without a loss, so fit() has nothing to "
                         "minimise. Pass `loss=` to compile().")
    train_checks.warn_if_nothing_trains(
        model, source.host if isinstance(source, data_mod.ArraySource) else None,
        " and ".join(f"`{k}`" for k, v in (("sample_weight", sample_weight),
                                           ("class_weight", class_weight)) if v is not None))
    if val_source is not None:
        try:
            _prepare(model, val_source)
        except (ValueError, TypeError) as err:
            if validation_data is None:
                raise
            raise type(err)(f"In `validation_data`: {err}") from err  # the argument given
    history = History()
    params = {"epochs": epochs, "steps": source.steps, "verbose": verbose}
    cbs = _callbacks(model, callbacks, verbose, params, history)
    # TerminateOnNaN reports a non-finite loss itself
    watch.quiet |= any(isinstance(cb, TerminateOnNaN) for cb in cbs.callbacks)
    plan = _plan(model, source, cbs, "train")
    model.stop_training = False
    # what BackupAndRestore records to refuse resuming a different run, and to continue
    # reading the data where the interrupted run stood
    run = FitRun(backend, batch_size=getattr(source, "batch_size", None),
                 samples=getattr(source, "n", None),
                 steps_per_execution=execution.recorded(model._config),
                 sources={"train": source, "validation": val_source})
    with model._running(run):
        return _fit_epochs(model, run, cbs, history, plan, initial_epoch, epochs,
                           validation_freq, watch)


def _fit_epochs(model: Any, run: FitRun, cbs: CallbackList, history: History,
                plan: execution.ExecutionPlan, initial_epoch: int, epochs: int,
                validation_freq: Any, watch: _LossWatch) -> History:
    """The epochs of ``fit`` (``run`` holds the data sources and what callbacks share)."""
    backend: Backend = run.backend
    source, val_source = run.sources["train"], run.sources["validation"]
    pacer = plan.pacer
    wants_batch_logs = cbs.wants("on_train_batch_end")

    def batch_logs() -> dict[str, Any]:
        return watch.seen(host_logs(backend.results("train"), backend.to_host))

    logs: dict[str, Any] = {}
    backend.keep_last_good("the start of this fit call")  # a host copy (backends/jax_recovery)
    try:
        cbs.call("on_train_begin", {})
        initial_epoch, skip = _resume(run, history, initial_epoch)
        for epoch in range(initial_epoch, epochs):
            if not skip:  # a mid-epoch resume keeps the restored running metrics
                backend.reset_metrics("train")
            cbs.call("on_epoch_begin", epoch, {})
            call = None
            # resumed mid-epoch: the batches before `skip` ran before the interruption
            watch.epoch, watch.last = epoch, skip - 1
            for call in source.calls(backend, plan.per_call, start=skip):
                watch.step = call.last_step
                cbs.call("on_train_batch_begin", call.first_step, {})
                if pacer is not None:
                    pacer.begin()
                for part in call.parts:
                    backend.train(part.feed, part.index, part.start, part.n)
                if pacer is not None:
                    pacer.end(call.parts[0].n)
                if wants_batch_logs:
                    cbs.call("on_train_batch_end", call.last_step, LazyLogs(batch_logs))
                if model.stop_training:
                    break
            if call is None and not skip:  # a generator that is used up: no batch this epoch
                warnings.warn("Your input ran out of data; interrupting training. Make sure "
                              "that your generator can yield at least `steps_per_epoch * "
                              "epochs` batches.", stacklevel=4)
                break
            logs = batch_logs()  # host sync: epoch logs for History
            backend.keep_last_good(f"the end of epoch {epoch + 1}")  # the state is computed
            if val_source is not None and _val_due(epoch, validation_freq):
                val_logs = _validate(model, run, cbs, epoch)
                if val_logs:
                    logs = dict(sorted({**logs, **val_logs}.items()))
            cbs.call("on_epoch_end", epoch, logs)
            skip = 0
            if model.stop_training:
                break
        if backend.has_average():
            backend.finalize_average()  # use_ema: the weights end as their average (Keras)
        cbs.call("on_train_end", logs)
    except BaseException as error:
        backend.settle()  # a step that failed at run time: back to the last good state
        cbs.abort(error)  # on_train_abort: file-writing callbacks close their files
        raise
    finally:
        try:
            backend.sync_to_module()
        finally:
            backend.release()
    return history


class _LossWatch:
    """One warning for the first non-finite training loss among the logs the loop reads
    anyway (epoch ends, batches whose logs a callback reads): no extra host sync. Quiet
    when the data checks already warned about NaN/Inf data, or TerminateOnNaN watches."""

    def __init__(self, data_not_finite: bool):
        self.quiet = data_not_finite  # the data checks already warned about NaN/Inf data
        self.epoch, self.step, self.last = 0, 0, -1

    def seen(self, logs: dict[str, Any]) -> dict[str, Any]:
        loss = logs.get("loss")
        if self.quiet or loss is None or np.isfinite(loss):
            self.last = self.step
            return logs
        self.quiet = True
        since = f"after batch {self.last}, whose loss was finite" if self.last >= 0 \
            else "since the epoch began"
        warnings.warn(
            f"The training loss became non-finite ({loss}) in epoch {self.epoch + 1}, at batch "
            f"{self.step} or before ({since}; batches counted from 0, read where the logs are "
            "read). The data kompile checked (arrays whole, an iterable's first batch) was "
            "finite: the training diverged, or a later batch holds NaN/Inf. Try a lower "
            "learning rate, gradient clipping (clipnorm=...) or TerminateOnNaN.", stacklevel=4)
        return logs


def _validate(model: Any, run: FitRun, cbs: CallbackList, epoch: int) -> dict[str, Any]:
    """fit's validation pass after ``epoch``: its logs as ``val_*`` entries (none, with a
    warning, when the validation data yielded no batch)."""
    run.validating = True  # read by callbacks; never in History.params
    try:
        val_logs = _run_eval(model, run.sources["validation"], cbs)
    finally:
        run.validating = False
    if val_logs is None:  # no val_* entries: no callback acts on empty validation
        warnings.warn(f"The validation data ran out: no batch was left for epoch {epoch + 1}, "
                      "so it logs no val_* values. A generator is used up across epochs: pass "
                      "a re-iterable (a list of batches, a DataLoader) or one that yields "
                      "`validation_steps * epochs` batches.", stacklevel=5)
        return {}
    return {"val_" + k: v for k, v in val_logs.items()}


def _resume(run: FitRun, history: History, initial_epoch: int) -> tuple[int, int]:
    """The epoch and batch to start from: a backup restored by BackupAndRestore in
    ``on_train_begin`` (it sets ``run.resume``), else ``initial_epoch`` and 0. The data
    sources continue from the positions the backup recorded."""
    resume = run.take_resume()
    if resume is None:
        return initial_epoch, 0
    positions = resume.get("data")
    for name in ("train", "validation"):
        src = run.sources[name]
        if src is None or src.position() is None:
            continue  # a generator: its position is its own
        if positions is None:  # a backup written before positions were recorded
            if isinstance(src, data_mod.ArraySource) and src.repeat \
                    and src.steps_limit is not None and src.steps_limit < src.batches_per_pass:
                raise ValueError(
                    "BackupAndRestore: the backup was written by an older kompile that did "
                    f"not record where the {name} data stood; with "
                    f"`{'steps_per_epoch' if name == 'train' else 'validation_steps'}` "
                    "below the data size the data continues across epochs, so it cannot "
                    "resume exactly. Delete the backup directory to start afresh.")
        elif positions.get(name) is not None:
            src.restore(positions[name])
    history.epoch = list(resume["history"]["epoch"])
    history.history = {k: list(v) for k, v in resume["history"]["history"].items()}
    return resume["epoch"], resume["step"]


def evaluate(model: Any, x: Any = None, y: Any = None, batch_size: Any = None,
             verbose: Any = "auto", sample_weight: Any = None, steps: Any = None,
             callbacks: Any = None, return_dict: bool = False) -> Any:
    model._require_compiled("evaluate")
    data_mod.checks.check_eval_arguments(batch_size, verbose, steps)
    y = model._bind_targets(x, y)  # compile-time target_tensors, split with x
    verbose = resolve_verbose(verbose)
    source = data_mod.adapt(x, y, sample_weight, batch_size=batch_size, steps=steps)
    model._backend.refresh_from_module()
    _prepare(model, source)
    cbs = _callbacks(model, callbacks, verbose, {"steps": source.steps, "verbose": verbose})
    try:
        logs = _run_eval(model, source, cbs)
        model._backend.write_back_rng()  # the module's RNG streams advanced by the evaluation
    except BaseException:
        model._backend.settle()  # a step that failed at run time: back to valid state
        raise
    finally:
        model._backend.release()
    if logs is None:
        raise ValueError("evaluate() ran no batch: the data yielded nothing (a generator "
                         "that is used up?).")
    return model._format_results(logs, return_dict)


def predict(model: Any, x: Any, batch_size: Any = None, verbose: Any = "auto", steps: Any = None,
            callbacks: Any = None) -> Any:
    data_mod.checks.check_eval_arguments(batch_size, verbose, steps)
    verbose = resolve_verbose(verbose)
    source = data_mod.adapt(x, None, None, batch_size=batch_size, steps=steps,
                            allow_empty=True)
    backend = model._backend
    spec = _first_forward(model, source)
    backend.prepare_predict(model._config)
    source.prepare(lambda x_, y_, sw_: (x_, [], []))
    if not isinstance(source, data_mod.ArraySource):  # each batch against the first
        source.check = BatchChecker((source.peek_x(), [], []), [], output_probe(model, False),
                                    source.argument)
    cbs = _callbacks(model, callbacks, verbose, {"steps": source.steps, "verbose": verbose})
    model.stop_predicting = False
    cbs.call("on_predict_begin", {})
    per_call = model._execution_plan(source, "predict", True).per_call
    wants_outputs = cbs.wants("on_predict_batch_end")
    chunks: list[list[Any]] = []
    try:
        for call in source.calls(backend, per_call, shuffle=False):
            cbs.call("on_predict_batch_begin", call.first_step, {})
            mine = [backend.predict(part.feed, part.index, part.start, part.n)
                    for part in call.parts]
            chunks.extend(mine)
            if wants_outputs:  # host sync only if a callback reads logs["outputs"]
                cbs.call("on_predict_batch_end", call.last_step, LazyLogs(
                    lambda mine=mine: {  # type: ignore[misc]
                        "outputs": _join(spec, backend.to_host(mine))}))
            if model.stop_predicting:
                break
        host = backend.to_host(chunks)  # host sync: the predictions
        backend.write_back_rng()  # the module's RNG streams advanced by the predictions
    except BaseException:
        backend.settle()  # a step that failed at run time: back to valid state
        raise
    finally:
        backend.release()
    outputs = _join(spec, host)
    cbs.call("on_predict_end", {})
    return outputs


def _join(spec: Any, host_chunks: list[list[Any]]) -> Any:
    """Per-call prediction chunks (flat per output, on the host) as one output structure;
    no chunk (0 samples): zero-length arrays in the output structure."""
    if not host_chunks:
        return spec.unflatten([np.zeros((0, *shape), np.float32) for shape in spec.shapes])
    return spec.unflatten([np.concatenate([c[i] for c in host_chunks])
                           for i in range(len(spec.names))])
