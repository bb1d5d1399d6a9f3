"""The Model facade: compile / fit / evaluate / predict over a Flax NNX or torch module.

Picks the backend from the module's type (no global switch), holds the compile
configuration and the objective, and delegates the loop to ``loop.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .. import compile as compile_mod
from .. import data as data_mod
from .. import distribution as distribution_mod
from .. import precision, serialization
from ..backends.base import Backend
from ..registry import keywords_checked, type_error
from ..structures import OutputSpec
from . import backend_choice, hints
from .state import ModelState
from .training import TrainingCalls


class Model(TrainingCalls, ModelState):
    """Keras's training workflow on top of a module you already wrote.

    ``kp.Model(module)`` wraps a Flax NNX module or a torch ``nn.Module``; ``compile`` then
    says how to train it (optimizer, loss, metrics) and ``fit`` / ``evaluate`` /
    ``predict`` run the one training loop. The backend is chosen from the module's type:
    there is no global backend switch, and a program may hold JAX and torch models at once.

    The module is called with ``x`` as its first argument, in the structure you give
    (one array, a tuple/list or a dict of arrays; a dict whose keys name the call's
    parameters is passed as keywords), plus ``training``/``train``/``deterministic`` and,
    for Flax NNX, ``rngs`` when its call method declares them (README: "Calling your
    module"). Its output may be an array, a
    tuple/list, a dict or any nesting of those; each array in it is one *output*, with a
    name (see ``output_names``) by which losses, metrics, targets and sample weights are
    paired with it.

    Args:
        module: A ``flax.nnx.Module`` or a ``torch.nn.Module``. kompile trains it in place:
            after every ``fit`` (and whenever you read ``model.module``) the module holds
            the trained weights, so you can keep using it without kompile.
        output_names: Names for the outputs of a module that returns a tuple or list, in
            order (default ``output_1``, ``output_2``, ...). Dict outputs are named by their
            keys and a single output has no name, so this argument is for tuple/list
            outputs only (for dict outputs it is ignored with a warning, as in Keras: the
            keys win). Names are what ``loss={...}``, ``metrics={...}``,
            ``loss_weights={...}`` and dict targets refer to, and they prefix the logs
            (``<name>_loss``, ``<name>_<metric>``).
        dtype_policy: ``None`` (the global policy, ``"float32"`` unless changed with
            ``kp.mixed_precision.set_global_policy``), a policy name (``"float32"``,
            ``"mixed_float16"``, ``"mixed_bfloat16"``, ``"float16"``, ``"bfloat16"``) or a
            ``kp.mixed_precision.Policy``. A mixed policy keeps the variables in float32
            and computes the forward pass in the lower precision; ``"mixed_float16"``
            also scales the loss (see ``compile(auto_scale_loss=...)``).
        seed: Seed of the ``nnx.Rngs`` kompile passes to a Flax NNX module whose
            ``__call__`` takes ``rngs``. ``None`` (default) draws one from the stream that
            ``kp.utils.set_random_seed`` seeds (reproducible after a call to it). Unused,
            with a warning, when the module takes no ``rngs`` (torch modules draw from
            torch's global RNG: seed it with ``kp.utils.set_random_seed``). Keyword-only.
        distribution: ``None`` (the global distribution set with
            ``kp.distribution.set_distribution``, none by default) or a
            ``kp.distribution.DataParallel``: one replica per device, each batch split on
            its first axis; ``kp.distribution.FSDP``: parameters and optimizer state
            sharded over all devices (torch: FSDP2 under torchrun); or a
            ``kp.distribution.ModelParallel`` (JAX): layouts chosen per variable over a
            device mesh (docs: "Sharded training").
            Keyword-only.
        trainable: Which variables train (Flax NNX only). ``None`` (default): every
            ``nnx.Param``. Otherwise an nnx filter, applied within the ``nnx.Param``
            variables: a Variable type (``nnx.LoRAParam``: only the adapters of
            ``nnx.LoRA``/``nnx.LoRALinear`` layers), a path string or substring filter
            (``nnx.PathContains("head")``), a callable ``(path, value) -> bool``, or
            ``nnx.Any``/``nnx.All``/``nnx.Not`` of those. The other parameters are never
            differentiated nor changed by the optimizer, weight decay or weight averaging;
            they are saved and restored with the module, and ``summary()`` counts them as
            non-trainable. torch modules refuse it: set ``requires_grad=False`` on the
            parameters to freeze (``module.embed.requires_grad_(False)``), which kompile
            honours. Keyword-only.

    Raises:
        TypeError: ``module`` is neither a Flax NNX module nor a torch module, or
            ``output_names`` is not a list of strings, or ``distribution`` is not a
            ``kp.distribution`` distribution, or ``trainable`` is given for a torch
            module or is not an nnx filter.
        ValueError: ``dtype_policy`` is an unknown policy name, or ``trainable`` selects
            no parameter.

    Example:
        >>> import numpy as np
        >>> from flax import nnx
        >>> import kompile as kp
        >>> model = kp.Model(nnx.Linear(3, 1, rngs=nnx.Rngs(0)))
        >>> model.backend
        'jax'
        >>> model.predict(np.ones((4, 3), np.float32), verbose=0).shape
        (4, 1)
    """

    @keywords_checked
    def __init__(self, module: Any, output_names: Sequence[str] | None = None,
                 dtype_policy: str | precision.Policy | None = None, *,
                 seed: int | None = None,
                 distribution: distribution_mod.Distribution | None = None,
                 trainable: Any = None) -> None:
        if output_names is not None and (isinstance(output_names, str) or not all(
                isinstance(n, str) for n in output_names)):
            raise type_error("output_names", "a list of strings", output_names)
        self.dtype_policy = precision.get_policy(dtype_policy)
        self.distribution = distribution or distribution_mod.distribution()
        if self.distribution is not None and not isinstance(self.distribution,
                                                            distribution_mod.Distribution):
            raise type_error("distribution", "a kp.distribution.DataParallel, ModelParallel or "
                             "FSDP", self.distribution)
        self._backend: Backend = backend_choice.backend_for(
            module, self.dtype_policy, output_names, self.distribution)
        self._backend.seed = backend_choice.resolve_seed(seed, self._backend.signature)
        if trainable is not None:
            backend_choice.set_trainable(self._backend, trainable)
        self._module = module
        self._config: compile_mod.CompileConfig | None = None
        self._objective = None
        self._spec: OutputSpec | None = None
        self._pending_state: dict[str, Any] | None = None  # set by kp.load_model
        self.history: Any = None
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
        """``"jax"`` or ``"torch"``: the backend chosen from the module's type."""
        return self._backend.name

    @property
    def optimizer(self) -> Any:
        """The resolved optimizer spec (``None`` before ``compile``)."""
        return None if self._config is None else self._config.optimizer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Not a layer: raises a ``TypeError`` saying to call ``predict`` or the module.

        (Keras models are layers, so ``model(x)`` works there; here ``model.predict(x)``
        gives NumPy predictions and ``model.module(x)`` the framework's own output.)

        Args:
            *args: Ignored.
            **kwargs: Ignored.

        Raises:
            TypeError: Always.
        """
        raise hints.call_error(self)

    @property
    def compiled(self) -> bool:
        """Whether ``compile`` has been called."""
        return self._config is not None

    @property
    def run_eagerly(self) -> bool:
        """Whether steps run eagerly (``compile(run_eagerly=True)``)."""
        return bool(self._config and self._config.run_eagerly)

    @property
    def jit_compile(self) -> Any:
        """The resolved value: True when steps are compiled, False when they run eagerly."""
        if self._config is None:
            return None
        resolved = self._backend.jit_compile
        if resolved is None:
            return self._backend.resolve_jit(self._config)
        return resolved

    @property
    def metrics_names(self) -> list[str]:
        """The log names in the order ``evaluate`` returns them (empty before the first
        batch: names of outputs and shape-dependent metrics are known only then)."""
        return [] if self._objective is None else list(self._objective.log_names)

    # ------------------------------------------------------------------ compile
    @keywords_checked
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None, *,
                loss_weights: Any = None, weighted_metrics: Any = None,
                run_eagerly: bool = False, steps_per_execution: int | str | None = None,
                jit_compile: bool | str = "auto", auto_scale_loss: bool = True,
                sample_weight_mode: Any = None, target_tensors: Any = None,
                experimental_steps_per_execution: int | None = None) -> Model:
        """Configure the model for training: optimizer, loss(es), metrics, execution.

        Only ``optimizer``, ``loss`` and ``metrics`` may be given by position; every other
        argument is keyword-only (Keras 3 takes ``loss_weights`` third, a trap when porting
        R/tf-keras code). Every name is resolved here, so a typo fails now with the closest
        valid name, not at the first batch. Nothing backend-specific is built until the
        first batch shows the output shapes. Calling ``compile`` again replaces the whole
        configuration, optimizer state and metrics included (as tf-keras does).

        **Structures.** A model with several outputs pairs each per-output argument
        (``loss``, ``metrics``, ``weighted_metrics``, ``loss_weights``,
        ``sample_weight_mode``, targets, sample weights) with its outputs by *name* when
        the argument is a dict and by *position* when it is a list, never by sorted key
        order. Output names are the dict keys of the module's output, ``output_1``,
        ``output_2``, ... for tuple/list outputs (or ``kp.Model(output_names=...)``),
        paths such as ``"a/b"`` for nested outputs. A dict may be partial: outputs it
        does not name get no loss (or no metric), and need no target.

        **Differences from Keras** (each a decision of kompile's contract): a
        ``loss_weights`` dict is matched by name even when ``loss`` is a list; a rank-1
        output ``(N,)`` is one value per sample, as ``(N, 1)``, for every loss, metric
        and sample weight; ``"accuracy"`` follows the output's crossentropy loss (binary
        crossentropy with multi-hot targets reports binary accuracy); ``"cce"``,
        ``"scce"``, ``"kld"``, ``"logcosh"``, ``"huber_loss"`` and ``"crossentropy"`` are
        accepted as losses; ``class_weight`` works for several outputs; a model compiled
        without a loss cannot ``fit``; ``steps_per_execution`` works on torch too.

        Args:
            optimizer: How the weights are updated. One of: a name (case-insensitive:
                ``"sgd"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``, ``"adagrad"``,
                ``"adadelta"``, ``"adamax"``, ``"nadam"``, ``"lion"``, ``"ftrl"``,
                ``"adafactor"``) with Keras's default hyperparameters; a
                ``kp.optimizers`` object (``kp.optimizers.Adam(learning_rate=1e-3,
                clipnorm=1.0)``) or class; a native ``optax.GradientTransformation``
                (JAX) or ``torch.optim`` optimizer (torch), used as given. Default
                ``"rmsprop"``.
            loss: What training minimises. A name (``"mse"``,
                ``"sparse_categorical_crossentropy"``, ``"crossentropy"``, ...; exact
                spelling or a listed alias), a ``kp.losses`` object
                (``kp.losses.BinaryCrossentropy(from_logits=True)``) or class, or a
                function ``fn(y_true, y_pred) -> per-sample values`` (last axis reduced;
                written with the array API or ``jax.numpy``/torch ops). For several
                outputs: one loss (applied to every output), a list with one entry per
                output, or a dict keyed by output name; ``None`` entries (or outputs a
                dict leaves out) get no loss; an entry may itself be a list of losses,
                which are summed. Default ``None``: ``fit`` then raises, while
                ``evaluate`` can still compute metrics.
            metrics: What is reported, not minimised; metrics ignore sample weights. A
                list of metric names (every loss name, ``"accuracy"``/``"acc"``,
                ``"auc"``, ``"precision"``, ``"recall"``, ``"f1_score"``, ...),
                ``kp.metrics`` objects or classes, ``kp.losses`` objects, or functions
                ``fn(y_true, y_pred) -> per-sample values`` (averaged, logged under
                ``fn.__name__``; ``kp.custom_metric(name, fn)`` picks the name). With
                several outputs: a flat list applies to every output, a list with one
                entry per output (each a metric, a list of metrics or ``None``) is per
                output, a dict keyed by output name may be partial. ``"accuracy"`` and
                ``"crossentropy"`` pick their binary / categorical / sparse variant per
                output from that output's loss, else from the per-sample shapes.
                Default ``None``.
            loss_weights: Scalar coefficients of each output's loss in the total loss
                ``sum(weight_i * loss_i)``: a float (every output), a list (by position)
                or a dict (always by output name, whatever form ``loss`` has). The
                per-output logs ``<name>_loss`` stay unweighted. Default ``None`` (every
                weight 1).
            weighted_metrics: Metrics, in the same forms as ``metrics``, that use the
                ``sample_weight`` (and ``class_weight``) of ``fit``/``evaluate``: a
                weighted mean is ``sum(w * v) / sum(w)`` over the whole epoch. A name that
                is also in ``metrics`` is logged as ``weighted_<name>``. Default ``None``.
            run_eagerly: ``True`` runs every step as plain Python (no ``jax.jit``, no
                ``torch.compile``), so prints, breakpoints and side effects in the module
                work; slower. It wins over ``jit_compile=True`` (with a warning).
                Default ``False``.
            steps_per_execution: Batches per compiled call (an int >= 1). On JAX the N
                steps run in one ``lax.scan`` on the device, which removes the per-batch
                Python and dispatch cost of small models; on torch they run in one call.
                Results equal ``steps_per_execution=1``; callbacks see one
                ``on_train_batch_begin``/``end`` per call (indices of the first/last
                batch in it). ``"auto"``: kompile picks N from measured call times (about
                50 ms per call). Default ``None``: callbacks see every batch, as with 1,
                and on JAX kompile fuses the batches that no callback watches (the
                progress bar only redraws every 0.1 s) into calls of about 50 ms.
            jit_compile: ``"auto"`` (default): JAX compiles steps with ``jax.jit`` and
                falls back to eager execution with a warning naming the cause if the
                step cannot be traced; torch runs eagerly. ``True``: ``jax.jit`` (raising
                if it cannot trace) or ``torch.compile`` of the whole training step
                (forward, loss, backward, optimizer step). ``False``: eager on both.
                torch only: a ``torch.compile`` mode, ``"reduce-overhead"`` (CUDA graphs on
                a GPU), ``"max-autotune"`` or ``"max-autotune-no-cudagraphs"``, compiles
                as ``True`` does with that mode (docs: Performance).
                ``model.jit_compile`` reports the resolved value.
            auto_scale_loss: With the ``"mixed_float16"`` dtype policy, wrap the
                optimizer in ``kp.optimizers.LossScaleOptimizer`` (dynamic loss scaling
                from 2**15; a step with non-finite gradients is skipped and halves the
                scale). No effect with other policies. Default ``True``.
            sample_weight_mode: ``None`` (default: per-sample weights of shape ``(N,)``,
                or ``(N, T)`` for sequence outputs, which work without a mode) or
                ``"temporal"`` (require ``(N, T)`` weights and an output of rank >= 3);
                or a list/dict of those per output.
            target_tensors: Targets bound now instead of passed as ``y``: an array, or a
                list/dict per output, with as many samples as the ``x`` later given to
                ``fit``/``evaluate`` (which then take no ``y``). Default ``None``.
            experimental_steps_per_execution: Deprecated alias of
                ``steps_per_execution`` (a ``DeprecationWarning``); used only when
                ``steps_per_execution`` is left unset. Default ``None``.

        Returns:
            The model itself, so that ``kp.Model(m).compile(...).fit(...)`` chains.

        Raises:
            ValueError: An unknown optimizer, loss or metric name (the message lists the
                valid names and the closest match), an invalid ``steps_per_execution``,
                ``jit_compile`` or ``sample_weight_mode``.
            TypeError: An argument of the wrong type, or an unknown keyword argument (the
                message names the closest valid one).

        Example:
            >>> import numpy as np
            >>> from flax import nnx
            >>> import kompile as kp
            >>> class TwoHeads(nnx.Module):
            ...     def __init__(self, rngs):
            ...         self.score = nnx.Linear(4, 1, rngs=rngs)
            ...         self.label = nnx.Linear(4, 3, rngs=rngs)
            ...     def __call__(self, x):
            ...         return {"score": self.score(x), "label": self.label(x)}
            >>> model = kp.Model(TwoHeads(nnx.Rngs(0)))
            >>> _ = model.compile(
            ...     optimizer=kp.optimizers.Adam(learning_rate=1e-2),
            ...     loss={"score": "mse",
            ...           "label": kp.losses.SparseCategoricalCrossentropy(from_logits=True)},
            ...     metrics={"label": ["accuracy"]},
            ...     loss_weights={"score": 0.5, "label": 1.0})
            >>> x = np.random.rand(32, 4).astype("float32")
            >>> y = {"score": np.random.rand(32, 1), "label": np.random.randint(0, 3, 32)}
            >>> sorted(model.evaluate(x, y, verbose=0, return_dict=True))
            ['label_accuracy', 'label_loss', 'loss', 'score_loss']
        """
        hints.check_metrics_are_not_weights(metrics)
        options: dict[str, Any] = {
            "loss_weights": loss_weights, "weighted_metrics": weighted_metrics,
            "run_eagerly": run_eagerly, "steps_per_execution": steps_per_execution,
            "jit_compile": jit_compile, "auto_scale_loss": auto_scale_loss,
            "sample_weight_mode": sample_weight_mode, "target_tensors": target_tensors}
        if experimental_steps_per_execution is not None:
            options.pop("steps_per_execution", None)  # the alias applies [SPEC 1]
            options["experimental_steps_per_execution"] = experimental_steps_per_execution
        config = compile_mod.make_config(optimizer, loss, metrics, **options)
        if (config.auto_scale_loss and self.dtype_policy.needs_loss_scale
                and not getattr(config.optimizer, "is_loss_scale", False)):
            from ..optimizers import LossScaleOptimizer

            config = dataclasses.replace(config,
                                         optimizer=LossScaleOptimizer(config.optimizer))
        self._config = config
        self._objective = None  # a recompile replaces the whole configuration [SPEC 1]
        self._pending_state = None
        self._backend.unbuild()
        return self

    def get_compile_config(self) -> dict[str, Any]:
        """Every ``compile`` argument as a JSON-serialisable dict (``{}`` before compile).

        Names stay names; objects become ``{"class_name": ..., "config": ...}``; per-output
        structures keep their form, so pairing survives a round trip. Custom functions
        and classes must be registered with ``kp.register`` first.

        Returns:
            A dict with one entry per ``compile`` argument.

        Raises:
            ValueError: A custom loss, metric or optimizer that was never registered
                (the message names where it was found).

        Example:
            >>> import kompile as kp
            >>> from flax import nnx
            >>> model = kp.Model(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))
            >>> config = model.compile("adam", "mse").get_compile_config()
            >>> config["optimizer"], config["loss"]
            ('adam', 'mse')
        """
        return {} if self._config is None else serialization.compile_config(self._config)

    def compile_from_config(self, config: dict[str, Any]) -> Model:
        """Compile from a dict made by ``get_compile_config`` (of this or another model).

        Args:
            config: The dict returned by ``get_compile_config()``, possibly after a JSON
                round trip.

        Returns:
            The model itself, compiled.

        Raises:
            TypeError: ``config`` is not a dict.
            ValueError: ``config`` is empty (the source model was never compiled), or names
                a custom object that is not registered in this process.
        """
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
            self._backend.set_spec(self._spec)
        else:  # this call's x may come in another form than the first call's
            self._backend.use_inputs(x_batch)
        return self._spec

    def _ensure_objective(self, ys: list[Any]) -> Any:
        if self._objective is None:
            shapes = [None if y is None else tuple(y.shape[1:]) for y in ys]
            assert self._config is not None and self._spec is not None  # set before the data
            objective = compile_mod.resolve(self._config, self._spec, shapes)
            self._backend.build(objective, self._config)
            self._objective = objective  # only once built: an interrupted build is redone
            if self._pending_state is not None:  # kp.load_model: the saved training state
                from .saving import restore_pending

                restore_pending(self)
        return self._objective

    def _bind_targets(self, x: Any, y: Any) -> Any:
        """``y``, or the targets bound by compile(target_tensors=...) for array ``x``."""
        assert self._config is not None  # _require_compiled ran
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
        assert self._config is not None  # _require_compiled ran
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

    def __repr__(self) -> str:
        state = "compiled" if self._config else "not compiled"
        return f"<kompile.Model {type(self._module).__name__} on {self.backend}, {state}>"



__all__ = ["Model"]
