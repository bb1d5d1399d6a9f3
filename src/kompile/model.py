"""The Model facade: compile / fit / evaluate / predict over a Flax NNX or torch module.

Picks the backend from the module's type (no global switch), holds the compile
configuration and the objective, and delegates the loop to ``loop.py``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from . import compile as compile_mod
from . import data as data_mod
from . import distribution as distribution_mod
from . import loop, precision, serialization
from .registry import check_kwargs, type_error
from .structures import OutputSpec


def _backend_for(module: Any, policy: precision.Policy, output_names: Any,
                 distribution: Any) -> Any:
    module_type = type(module)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(module, torch.nn.Module):
        from .backends.torch_ddp import torch_backend  # DDP when a process group is initialised

        return torch_backend(module, policy, output_names, distribution)
    if any(c.__module__.startswith("flax.nnx") for c in module_type.__mro__):
        from .backends.jax import JaxBackend

        return JaxBackend(module, policy, output_names, distribution)
    raise TypeError(
        f"kp.Model(module) needs a flax.nnx.Module or a torch.nn.Module; received "
        f"{module_type.__name__} (from {module_type.__module__})."
    )


class Model:
    """Keras's training workflow on top of a module you already wrote.

    ``kp.Model(module).compile(optimizer, loss, metrics, ...)`` then ``fit``/``evaluate``/
    ``predict``. The module is called with ``x`` as its single argument.
    """

    def __init__(self, module: Any, output_names: Any = None, dtype_policy: Any = None,
                 **kwargs: Any):
        check_kwargs("Model", kwargs, ["distribution"])
        if output_names is not None and (isinstance(output_names, str) or not all(
                isinstance(n, str) for n in output_names)):
            raise type_error("output_names", "a list of strings", output_names)
        self.dtype_policy = precision.get_policy(dtype_policy)
        self.distribution = kwargs.get("distribution") or distribution_mod.distribution()
        if self.distribution is not None and not isinstance(self.distribution,
                                                            distribution_mod.DataParallel):
            raise type_error("distribution", "a kp.distribution.DataParallel", self.distribution)
        self._backend = _backend_for(module, self.dtype_policy, output_names, self.distribution)
        self._module = module
        self._config: compile_mod.CompileConfig | None = None
        self._objective = None
        self._spec: OutputSpec | None = None
        self.history = None
        self.stop_training = False  # set by a callback: the loop ends after this batch/call
        self.stop_evaluating = False
        self.stop_predicting = False

    # ------------------------------------------------------------------ properties
    @property
    def module(self) -> Any:
        """The user's module, with the latest trained state written into it.

        Also between batches (from a callback): what is then changed on the module is what
        the next batch trains with."""
        self._backend.sync_to_module()
        return self._module

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def optimizer(self) -> Any:
        return None if self._config is None else self._config.optimizer

    @property
    def compiled(self) -> bool:
        return self._config is not None

    @property
    def run_eagerly(self) -> bool:
        return bool(self._config and self._config.run_eagerly)

    @property
    def jit_compile(self) -> Any:
        """The resolved value: True when steps are compiled, False when they run eagerly."""
        if self._config is None:
            return None
        resolved = getattr(self._backend, "jit_compile", None)
        if resolved is None:
            return self._backend.resolve_jit(self._config)
        return resolved

    @property
    def metrics_names(self) -> list[str]:
        return [] if self._objective is None else list(self._objective.log_names)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                **kwargs: Any) -> Model:
        config = compile_mod.make_config(optimizer, loss, metrics, **kwargs)
        if (config.auto_scale_loss and self.dtype_policy.needs_loss_scale
                and not getattr(config.optimizer, "is_loss_scale", False)):
            from .optimizers import LossScaleOptimizer

            config.optimizer = LossScaleOptimizer(config.optimizer)
        self._config = config
        self._objective = None  # a recompile replaces the whole configuration [SPEC 1]
        self._backend.unbuild()
        return self

    def get_compile_config(self) -> dict[str, Any]:
        return {} if self._config is None else serialization.compile_config(self._config)

    def compile_from_config(self, config: dict[str, Any]) -> Model:
        return self.compile(**serialization.compile_kwargs(config))

    # ------------------------------------------------------------------ internals
    def _require_compiled(self, what: str) -> None:
        if self._config is None:
            raise ValueError(f"You must call compile() before {what}(): the model has no loss, "
                             "optimizer or metrics yet. Call model.compile(optimizer, loss, "
                             "metrics) first.")

    def _output_spec(self, x_batch: Any) -> OutputSpec:
        if self._spec is None:
            self._spec = self._backend.output_spec(x_batch)
            self._backend.spec = self._spec
        return self._spec

    def _ensure_objective(self, ys: list[Any]) -> Any:
        if self._objective is None:
            shapes = [None if y is None else tuple(y.shape[1:]) for y in ys]
            objective = compile_mod.resolve(self._config, self._spec, shapes)
            self._backend.build(objective, self._config)
            self._objective = objective  # only once built: an interrupted build is redone
        return self._objective

    def _bind_targets(self, x: Any, y: Any) -> Any:
        """``y``, or the targets bound by compile(target_tensors=...) for array ``x``."""
        if self._config.target_tensors is None:
            return y
        if y is not None:
            raise ValueError("`y` was given but the model was compiled with `target_tensors`; "
                             "pass one or the other.")
        if x is not None and not isinstance(data_mod.adapt(x), data_mod.ArraySource):
            raise ValueError(f"`target_tensors` need `x` as arrays; received a "
                             f"{type(x).__name__}. Yield (x, y) batches from it instead.")
        return None if x is None else self._target_tensors_for(x)

    def _target_tensors_for(self, x: Any) -> Any:
        targets = data_mod.to_numpy(self._config.target_tensors, "target_tensors")
        n_x = data_mod.num_samples({"x": x})
        n_t = data_mod.num_samples({"target_tensors": targets})
        if n_x != n_t:
            raise ValueError(f"`target_tensors` hold {n_t} samples but `x` has {n_x}; they must "
                             "match.")
        return targets

    def _format_results(self, logs: dict[str, Any], return_dict: bool) -> Any:
        if return_dict:
            return dict(sorted(logs.items()))
        ordered = [logs[k] for k in self._objective.log_names]
        return ordered[0] if len(ordered) == 1 else ordered

    # ------------------------------------------------------------------ training calls
    def fit(self, x: Any = None, y: Any = None, **kwargs: Any) -> Any:
        check_kwargs("fit", kwargs, loop.fit.__code__.co_varnames[3:loop.fit.__code__.co_argcount])
        return loop.fit(self, x, y, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, **kwargs: Any) -> Any:
        check_kwargs("evaluate", kwargs,
                     loop.evaluate.__code__.co_varnames[3:loop.evaluate.__code__.co_argcount])
        return loop.evaluate(self, x, y, **kwargs)

    def predict(self, x: Any, **kwargs: Any) -> Any:
        check_kwargs("predict", kwargs,
                     loop.predict.__code__.co_varnames[2:loop.predict.__code__.co_argcount])
        return loop.predict(self, x, **kwargs)

    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: Any = None, return_dict: bool = False) -> Any:
        self._require_compiled("train_on_batch")
        y = self._bind_targets(x, y)
        source = data_mod.adapt(x, y, sample_weight, batch_size=None)
        source.batch_size = source.n
        self._backend.refresh_from_module()
        loop._prepare(self, source, class_weight)
        if not self._objective.has_loss:
            raise ValueError("The model was compiled without a loss, so train_on_batch() has "
                             "nothing to minimise. Pass `loss=` to compile().")
        self._backend.reset_metrics("train")
        try:
            for call in source.calls(self._backend, 1, shuffle=False):
                for part in call.parts:
                    self._backend.train(part.feed, part.index, part.start, part.n)
        finally:
            try:
                self._backend.sync_to_module()
            finally:
                self._backend.release()
        logs = loop.host_logs(self._backend.results("train"), self._backend.to_host)
        return self._format_results(logs, return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        self._require_compiled("test_on_batch")
        n = data_mod.num_samples({"x": data_mod.to_numpy(x, "x")})
        return self.evaluate(x, y, batch_size=n, sample_weight=sample_weight, verbose=0,
                             return_dict=return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        n = data_mod.num_samples({"x": data_mod.to_numpy(x, "x")})
        return self.predict(x, batch_size=n, verbose=0)

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        return self._backend.get_weights()

    def set_weights(self, weights: list[Any]) -> None:
        self._backend.set_weights(weights)

    def __repr__(self) -> str:
        state = "compiled" if self._config else "not compiled"
        return f"<kompile.Model {type(self._module).__name__} on {self.backend}, {state}>"

    # ================================================================== issue 7: files, summary,
    # learning rate (weights files and summary over the backend's weights_dict(); see saving.py)
    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """The module's variables (parameters, batch statistics; no optimizer or RNG state)
        as one safetensors file, written atomically."""
        import os

        from . import saving

        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{os.fspath(filepath)!r} exists and overwrite=False.")
        saving.save_weights(self, filepath)

    def load_weights(self, filepath: Any) -> None:
        """Weights written by ``save_weights`` (or a ModelCheckpoint file); names and shapes
        must match the module's."""
        from . import saving

        saving.load_weights(self, filepath)

    @property
    def learning_rate(self) -> float:
        """The learning rate the next training step uses, read from the optimizer state.

        Setting it changes the optimizer state, not the compiled step: no retrace."""
        self._require_built("learning_rate")
        return float(self._backend.learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._require_built("learning_rate")
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise type_error("learning_rate", "a float", value)
        self._backend.learning_rate = float(value)

    def _require_built(self, what: str) -> None:
        if self._config is None or self._objective is None:
            raise ValueError(f"`{what}` lives in the optimizer state, which is created at the "
                             "first training batch: call fit() or train_on_batch() first.")

    def summary(self, x: Any = None, print_fn: Any = None) -> None:
        """Print the module's layers and parameter counts.

        Flax NNX with an example batch ``x``: ``flax.nnx.tabulate`` (layers, input and output
        shapes, parameter counts). Otherwise: torch's module repr (torch), then a table of
        named variables with shapes and the trainable / non-trainable totals.
        """
        print_fn = print_fn or print
        module = self.module  # synced: the trained values
        title = f'Model: "{type(module).__name__}" ({self.backend})'
        if x is not None and self.backend == "jax":
            from flax import nnx

            try:
                print_fn(nnx.tabulate(module, data_mod.to_numpy(x, "x"),
                                      console_kwargs={"force_terminal": False,
                                                      "no_color": True, "width": 120}))
                return
            except Exception as err:  # noqa: BLE001  (fall back to the plain table)
                print_fn(f"(nnx.tabulate failed: {type(err).__name__}: {err})")
        lines = [title]
        if self.backend == "torch":
            lines.append(repr(module))
            variables = [(n, p, p.requires_grad) for n, p in module.named_parameters()]
            variables += [(n, b, False) for n, b in module.named_buffers()]
        else:
            from flax import nnx

            from .backends.jax_state import named

            params = nnx.state(module, nnx.Param)
            others = nnx.state(module, nnx.Not(nnx.Any(nnx.Param, nnx.RngState)))
            variables = [(n, a, True) for n, a in named(params)]
            variables += [(n, a, False) for n, a in named(others)]
        width = max([len(n) for n, _, _ in variables] + [4]) + 2
        lines.append(f"{'name':<{width}}{'shape':<18}{'dtype':<10}{'params':>10}")
        lines.append("-" * (width + 38))
        totals = [0, 0]
        for name, a, trainable in variables:
            count = int(np.prod(tuple(a.shape)))
            totals[0 if trainable else 1] += count
            dtype = str(a.dtype).replace("torch.", "")
            lines.append(f"{name:<{width}}{str(tuple(a.shape)):<18}{dtype:<10}{count:>10,}"
                         + ("" if trainable else "  (non-trainable)"))
        lines.append("-" * (width + 38))
        lines.append(f"Total params: {sum(totals):,}")
        lines.append(f"Trainable params: {totals[0]:,}")
        lines.append(f"Non-trainable params: {totals[1]:,}")
        print_fn("\n".join(lines))
    # ================================================================== end of issue 7 section


__all__ = ["Model"]
