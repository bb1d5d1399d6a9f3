"""PyTorch backend for ``torch.nn.Module`` models: the train, eval and predict steps.

Torch trains the user's module in place, so the state kept here is only what the module
does not hold: the ``torch.optim`` optimizer (built from the compile spec), the
``torch.amp.GradScaler`` of a loss-scaled optimizer, and metric states (dicts of tensors
on the module's device). A step is straight-line PyTorch: ``zero_grad``, forward (under
``torch.autocast`` for a mixed policy), the shared array-API loss, ``backward``, clipping,
``step``; metric updates on detached predictions; eval and predict under
``torch.inference_mode``. Nothing in a step reads a value back to the host.

``jit_compile=True`` (or a ``torch.compile`` mode such as ``"reduce-overhead"``) compiles
the whole training step with ``torch.compile`` (torch_compiled.py) and reuses it for the N
steps of a ``steps_per_execution`` call. Checkpoint state (``state_dict``) lives in torch_state.py.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from typing import Any

import numpy as np
import torch

from .. import calling, optimizers, structures
from ..data.arrays import map_arrays
from ..warn import KompileWarning
from . import (
    extra_losses,
    torch_accumulate,
    torch_compiled,
    torch_data,
    torch_fast,
    torch_optim,
    torch_state,
)
from .base import check_weights
from .interrupts import SignalGuard


class TorchBackend:
    name = "torch"

    def __init__(self, module: torch.nn.Module, policy: Any, output_names: Any = None,
                 distribution: Any = None):
        self.module = module
        self.dist = distribution
        self.policy = policy
        self.output_names = output_names
        self._spec: structures.OutputSpec | None = None  # set by Model (set_spec)
        self.jit_compile: Any = None
        self.objective: Any = None
        self.opt: Any = None
        self.opt_spec: Any = None
        self.scaler: Any = None
        self.params: list[Any] = []  # the trained parameters (torch_optim.build_optimizer)
        self._clip = False  # whether the spec clips gradients
        self.average: Any = None  # the weights' moving average (use_ema), torch_accumulate
        self._accum, self._micro = 1, 0  # gradient accumulation: N, batches taken
        self.metrics: dict[str, Any] = {"train": None, "eval": None}
        self._steps = 0  # training steps run (the iteration count when there is no optimizer)
        self._lr: float | None = None  # the learning rate when there is no optimizer
        self._jit = False
        self._mode: str | None = None  # torch.compile's mode (torch_compiled.py)
        self._compiling_now = False
        self._fns: dict[str, Any] = {}
        self._fast: Any = None  # torch_fast.FastObjective, set by build
        self.train_module: Any = None  # what the training forward calls, if not `module` (DDP)
        # the calling rule (kompile.calling); torch modules draw from torch's global RNG
        self.signature = calling.ModuleSignature(module, "forward", rngs_allowed=False)
        self.seed: int | None = None
        self._guard = SignalGuard()  # Ctrl-C inside a training step waits for its end
        compute, variable = (getattr(torch, d) for d in (policy.compute_dtype,
                                                         policy.variable_dtype))
        self._compute_dtype = None if compute == torch.float32 else compute
        self._variable_dtype = None if variable == torch.float32 else variable

    # ------------------------------------------------------------------ device and dtypes
    @property
    def device(self) -> torch.device:
        for t in itertools.chain(self.module.parameters(), self.module.buffers()):
            return t.device
        return torch.device("cpu")

    def _amp(self) -> Any:
        """The autocast context of the forward pass (none under float32)."""
        if self._compute_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._compute_dtype)

    def _cast(self, x: Any) -> Any:
        """Floating inputs to the variable dtype when variables are not float32."""
        dtype = self._variable_dtype
        if dtype is None:
            return x
        return map_arrays(lambda a: a.to(dtype) if a.is_floating_point() else a, x)

    # ------------------------------------------------------------------ shapes
    def use_inputs(self, x: Any) -> calling.CallRule:
        """This call's ``x`` (one batch): its calling rule, or an error naming what the
        module cannot take, before any step."""
        return self.signature.rule_for(x)

    @property
    def spec(self) -> structures.OutputSpec:
        assert self._spec is not None, "the Model sets the spec before any step"
        return self._spec

    def set_spec(self, spec: structures.OutputSpec) -> None:
        self._spec = spec

    def output_spec(self, x: Any) -> structures.OutputSpec:
        torch_data.refuse_meta(self.module)
        self.use_inputs(x)
        try:
            out = self._eval_forward(x)
        except Exception as err:  # noqa: BLE001  (re-raised with what x held, chained)
            raise calling.first_call_error(self.signature, x, err) from err
        return structures.output_spec(out, self.output_names)

    def _eval_forward(self, x: Any) -> Any:
        """One eval-mode forward kompile runs for itself (the output structure, a sample of
        predictions), leaving no trace the user's code could count: torch's RNG state,
        the module's buffers and the plain Python numbers/strings its submodules hold
        (call counters, flags) are put back afterwards, and its add_loss values dropped."""
        was_training = self.module.training
        self.module.eval()
        device = self.device
        devices = [device] if device.type == "cuda" else []
        kept = torch_state.side_state(self.module)
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad(), self._amp():
                return self.signature.rule_for(x).call(self.module, self._cast(self.put(x)),
                                                       False)
        finally:
            self.module.train(was_training)
            extra_losses.torch_total(self.module)  # kp.add_loss values of this call: dropped
            torch_state.restore_side_state(kept)

    def sample_outputs(self, x: Any) -> list[Any]:
        """Flat host predictions for the first few samples of ``x`` (eval mode)."""
        few = map_arrays(lambda a: a[:8], x)
        return self.to_host(self.spec.flatten(self._eval_forward(few)))

    # ------------------------------------------------------------------ build
    def resolve_jit(self, config: Any) -> bool:
        wanted = config.jit_compile is True or torch_compiled.compile_mode(config.jit_compile)
        return bool(wanted) and not config.run_eagerly

    def build(self, objective: Any, config: Any) -> None:
        torch_data.refuse_meta(self.module)
        self.objective = objective
        torch_optim.build_optimizer(self, config.optimizer)
        if config.run_eagerly and config.jit_compile not in ("auto", False):
            warnings.warn(f"run_eagerly=True overrides jit_compile={config.jit_compile!r}: the "
                          "steps run eagerly.", KompileWarning, stacklevel=3)
        self._jit = self.jit_compile = self.resolve_jit(config)
        self._mode = torch_compiled.compile_mode(config.jit_compile)
        self._fns = {}
        self._steps, self._lr = 0, None
        self._slots = None  # optimizer slot names and shapes before the first step (torch_state)
        self._initial = self._metric_states()
        # native fused loss and metric ops where they cover the objective (eager steps only:
        # torch.compile fuses the shared code itself)
        self._fast = None if self._jit else torch_fast.plan(objective)
        self.metrics = {"train": self._initial, "eval": self._initial}

    def _metric_states(self) -> dict[str, Any]:
        """The objective's initial NumPy states as device tensors (states are never updated
        in place, so one copy serves every reset)."""
        return self.put(self.objective.init_states())

    def unbuild(self) -> None:
        """Forget optimizer and metric state (a recompile); the module keeps the weights."""
        self.opt = self.scaler = self.objective = None
        self.metrics = {"train": None, "eval": None}
        self.jit_compile, self._jit, self._fns = None, False, {}
        self._fast = None

    def prepare_predict(self, config: Any = None) -> None:
        """Predict needs nothing built: the module is the whole state. Before the first
        fit/evaluate, the compile ``config``'s mode applies (``jit_compile=True``: compiled)."""
        if self.objective is None and config is not None:
            jit = self.resolve_jit(config)
            if jit != self._jit:
                self._jit, self._fns = jit, {}
            self.jit_compile = jit

    def keep_last_good(self, where: str, often: bool = False) -> None:
        """Nothing to copy: a torch step runs in order on the host's stream of work, and a
        failure inside it (out of memory in forward or backward) raises before
        ``optimizer.step()`` changes a parameter."""

    def settle(self) -> bool:
        """After an exception: the parameters are those of the last completed step."""
        return False

    def release(self) -> None:
        """End of a call: put back the SIGINT handler (batches are gathered per step, so
        nothing else is held)."""
        self._guard.restore()

    # ------------------------------------------------------------------ steps
    def _forward(self, x: Any, module: Any = None, training: bool = False) -> list[Any]:
        module = self.module if module is None else module
        call = self.signature.rule_for(x).call
        if self._compute_dtype is None:
            return self.spec.flatten(call(module, x, training))
        with self._amp():
            return self.spec.flatten(call(module, self._cast(x), training))

    def _train_forward(self, feed: Any, row: torch.Tensor, states: dict[str, Any]):
        """Forward, loss and metric update of one training step (what torch.compile sees)."""
        x, ys, sws = torch_data.gather(feed, row)
        preds = self._forward(x, self.train_module, training=True)
        added = extra_losses.torch_total(self.module)  # kp.add_loss values of this forward
        fast = self._fast.step(ys, preds, sws, states) if self._fast is not None \
            and added is None else None
        if fast is not None:
            return fast
        total, per_output = self.objective.compute_loss(ys, preds, sws)
        if added is not None:
            total = total + added
        with torch.no_grad():
            states = self.objective.update(states, ys, torch_data.detach(preds), sws,
                                           total.detach(), torch_data.detach(per_output),
                                           row.shape[0])
        return total, states

    def _train_step(self, feed: Any, row: torch.Tensor, states: dict[str, Any],
                    compiling: bool = False):
        opt, scaler = self.opt, self.scaler
        if opt is None:  # no trainable parameters: nothing to differentiate or update
            states = self._fn("train_forward")(feed, row, states)[1]
            self._steps += 1
            return states
        if self._accum > 1:
            return torch_accumulate.train_step(self, feed, row, states, compiling)
        opt.zero_grad(set_to_none=True)
        if self._jit:  # forward to optimizer step in one compiled function
            self._compiling_now = compiling
            states = self._fn("whole_step")(feed, row, states)
            self._steps += 1
            if self.average is not None:
                torch_accumulate.after_plain_step(self)
            return states
        total, states = self._fn("train_forward")(feed, row, states)
        if scaler is None:
            total.backward()
        else:
            scaler.scale(total).backward()
            if self._clip:
                scaler.unscale_(opt)  # clip the true gradients
        if self._clip:
            self.opt_spec.torch_clip(self.params)
        if compiling:
            self._guard.open()  # the window of the first compiled step: the update
        if scaler is None:
            opt.step()
        else:  # skips opt.step() on non-finite gradients; GradScaler reads found_inf here
            scaler.step(opt)
            scaler.update()
        self._steps += 1
        if self.average is not None:
            torch_accumulate.after_plain_step(self)
        return states

    def _eval_step(self, feed: Any, row: torch.Tensor, states: dict[str, Any]):
        x, ys, sws = torch_data.gather(feed, row)
        preds = self._forward(x)
        added = extra_losses.torch_total(self.module)
        fast = self._fast.step(ys, preds, sws, states) if self._fast is not None \
            and added is None else None
        if fast is not None:
            return fast[1]
        total, per_output = self.objective.compute_loss(ys, preds, sws)
        if added is not None:
            total = total + added
        return self.objective.update(states, ys, preds, sws, total, per_output, row.shape[0])

    def _predict_step(self, x: Any, row: torch.Tensor) -> list[Any]:
        out = self._forward(torch_data.take(x, row))[:len(self.spec.names)]  # no model's 0-d loss
        extra_losses.torch_total(self.module)  # kp.add_loss values: not used by predict
        return out

    def _fn(self, kind: str) -> Any:
        fn = self._fns.get(kind)
        if fn is None:
            if kind == "whole_step":
                fn = torch_compiled.quiet(torch_compiled.whole_step(self, self._mode))
            else:
                fn = getattr(self, "_" + kind)
                if self._jit:
                    fn = torch_compiled.quiet(torch.compile(fn, mode=self._mode))
            self._fns[kind] = fn
        return fn

    def train(self, feed: Any, index: Any, start: int, n: int) -> None:
        if not self.module.training:  # a recursive walk: only when eval() ran in between
            self.module.train()
        guard = self._guard
        if not guard.installed:
            guard.install()
        # Ctrl-C waits for the end of a step (parameters, batch statistics and optimizer
        # state change together), except during the first compiled step: compiling changes
        # nothing and may take long, and the optimizer step still is a window of its own
        compiling = self._jit and not self._fns.get("trained")
        states = self.metrics["train"]
        for i in range(n):
            if not compiling:
                guard.open()
            try:
                states = self._train_step(feed, index[start + i], states, compiling)
            except (ValueError, RuntimeError) as err:
                if calling.is_batchnorm_batch_of_one(err):
                    raise calling.batchnorm_hint(int(index[start + i].shape[0])) from err
                raise
            finally:
                guard.close()
            if compiling:
                compiling, self._fns["trained"] = False, True  # compiled (reset with _fns)
        self.metrics["train"] = states

    def evaluate(self, feed: Any, index: Any, start: int, n: int) -> None:
        if self.module.training:
            self.module.eval()
        step, states = self._fn("eval_step"), self.metrics["eval"]
        with torch.inference_mode():
            for i in range(n):
                states = step(feed, index[start + i], states)
        self.metrics["eval"] = states

    def predict(self, feed: Any, index: Any, start: int, n: int) -> list[Any]:
        """Flat per-output predictions covering rows ``start:start+n`` of ``index``."""
        if self.module.training:
            self.module.eval()
        step = self._fn("predict_step")
        with torch.inference_mode():
            batches = [step(feed[0], index[start + i]) for i in range(n)]
        if n == 1:
            return batches[0]
        return [torch.cat(parts) for parts in zip(*batches)]

    # ------------------------------------------------------------------ metrics and host
    def reset_metrics(self, phase: str) -> None:
        self.metrics[phase] = self._initial

    def results(self, phase: str) -> dict[str, Any]:
        with torch.no_grad():
            return self.objective.results(self.metrics[phase])

    def put(self, tree: Any) -> Any:
        """Host arrays to tensors on the module's device (pinned, non-blocking on CUDA)."""
        device = self.device

        def one(a: Any) -> torch.Tensor:
            if isinstance(a, torch.Tensor):
                return a.to(device)
            a = np.asarray(a)
            if not a.flags.writeable or not a.flags.c_contiguous:
                a = np.array(a)  # torch.from_numpy wants writable, contiguous memory
            t = torch.from_numpy(a)
            if device.type == "cuda":
                return t.pin_memory().to(device, non_blocking=True)
            return t.to(device)

        return map_arrays(one, tree)

    def fits_on_device(self, nbytes: int) -> bool:
        device = self.device
        if device.type == "cuda":
            return nbytes <= torch.cuda.mem_get_info(device)[0] // 4
        return device.type == "cpu" or nbytes <= 4 << 30  # CPU tensors share NumPy's memory

    @property
    def process_index(self) -> int:
        return 0  # one process (torch_ddp.py: one per rank)

    def agree(self, value: Any) -> Any:
        return value

    def check_agreement(self, describe: Any) -> None:
        return None  # one process (torch_ddp.py gathers and compares)

    @property
    def split_across_processes(self) -> bool:
        return False

    def check_batch_size(self, batch_size: int) -> None:
        """Any batch size serves one process."""

    # ------------------------------------------------------------------ calls
    @property
    def fuses_calls(self) -> bool:
        return False  # eager steps: one call per batch costs the same as a loop of them

    def set_paced(self, phase: str, paced: bool) -> None:
        """Torch runs a call's batches one by one: any count needs nothing of it."""

    def wait(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def to_host(self, tree: Any) -> Any:
        return map_arrays(torch_data.to_numpy, tree)  # host sync

    # ------------------------------------------------------------------ module state
    def sync_to_module(self) -> None:
        """Nothing to do: torch trains the module's own parameters in place."""

    def write_back_rng(self) -> None:
        """Nothing to do: torch modules draw from torch's global RNG."""

    def refresh_from_module(self) -> None:
        """Nothing to do: weights set on the module between calls are already the live ones."""

    def get_weights(self) -> list[np.ndarray]:
        return [torch_data.to_numpy(p).copy() for p in self.module.parameters()]

    def set_weights(self, weights: list[Any]) -> None:
        params = list(self.module.parameters())
        check_weights(weights, params)
        with torch.no_grad():
            for p, w in zip(params, weights):
                p.copy_(torch_state.onto(p, torch.as_tensor(np.asarray(w))))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Module, optimizer, loss-scale and train-metric state and the iteration count as
        NumPy arrays: everything a resumed fit needs (checkpoints)."""
        return torch_state.dump(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch_state.load(self, state)

    def weights_dict(self) -> dict[str, np.ndarray]:
        """The module's ``state_dict()`` as NumPy arrays."""
        return torch_state.dump_module(self.module)

    def load_weights_dict(self, weights: dict[str, Any]) -> None:
        torch_state.load_module(self.module, weights)

    def summary_table(self, x: Any) -> tuple[str | None, str | None]:
        return None, None  # torch has no table of its own: summary() prints kompile's

    def describe_module(self) -> list[str]:
        return [repr(self.module)]

    def variables(self) -> list[tuple[str, Any, bool]]:
        own = [(n, p, p.requires_grad) for n, p in self.module.named_parameters()]
        return own + [(n, b, False) for n, b in self.module.named_buffers()]

    def global_rng(self) -> dict[str, np.ndarray]:
        return torch_state.global_rng()

    def restore_global_rng(self, arrays: dict[str, Any]) -> None:
        torch_state.restore_global_rng(arrays)

    # ------------------------------------------------------------------ weights' average
    def has_average(self) -> bool:
        return self.average is not None

    def swap_average(self) -> None:
        """Exchange the trained weights and their moving average (``use_ema``)."""
        self.average.swap()

    def finalize_average(self) -> None:
        """The weights set to their average (no-op without ``use_ema``)."""
        if self.average is not None:
            self.average.finalize()

    # ------------------------------------------------------------------ optimizer
    @property
    def has_optimizer_state(self) -> bool:
        return self.opt is not None

    @property
    def learning_rate(self) -> float:
        if self.opt is None:
            lr = self.opt_spec._learning_rate if self._lr is None else self._lr
            return float(lr(self._steps) if callable(lr) else lr)
        return float(self.opt_spec.torch_learning_rate(self.opt))

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self.opt is None:
            self._lr = float(value)
        else:
            self.opt_spec.torch_set_learning_rate(self.opt, value)

    @property
    def iterations(self) -> int:
        """Optimizer steps taken (steps skipped by the loss scale do not count)."""
        if self.opt is None or isinstance(self.opt_spec, optimizers.NativeTorch):
            return self._steps  # no optimizer, or a user's torch optimizer: steps run
        return int(self.opt.param_groups[0].get("iterations", 0))  # the spec's pre-step hook

