"""Distributed training: which devices a model uses, how batches and state are split.

``DataParallel(devices=None)``: one replica of the state per device, each batch split
on its first axis. On JAX this is SPMD sharding on a 1-D mesh (``NamedSharding``): the
state and the data feed are replicated, each gathered batch is constrained to be sharded
over the ``"batch"`` axis, and XLA inserts the gradient and metric all-reduces, so
results equal single-device training on the same global batches. On torch it is
``DistributedDataParallel`` over an initialised process group (``torchrun``).
No communication code of our own.

``ModelParallel(layout_map=..., batch_dim_name="batch")`` (JAX) shards the parameters
and the optimizer state too, with Keras 3's classes and names: a ``DeviceMesh`` of named
axes, a ``LayoutMap`` from regular expressions on variable paths to one mesh axis name (or
``None``) per array dimension. The sharded state and the batch placement are applied by
``backends/jax_sharding.py``; XLA partitions the step and inserts the collectives.

``FSDP(shard_modules=...)`` shards every parameter and its optimizer state over all
devices on both backends: FSDP2 (``fully_shard``) on torch, backends/torch_fsdp.py; on
JAX a ``ModelParallel``-like layout computed per parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any


def _batch_mesh(devices: Any) -> Any:
    """A one-axis ("batch") JAX mesh over ``devices`` (default every device)."""
    import jax
    import numpy as np
    from jax.sharding import Mesh

    return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("batch",))

class Distribution:
    """The base class of kompile's distributions (``DataParallel``, ``ModelParallel``)."""

    _mesh: Any = None
    batch_axis = "batch"

    @property
    def mesh(self) -> Any:
        raise NotImplementedError

    @property
    def num_devices(self) -> int:
        """How many parts each batch is split into (the size of the batch axis)."""
        names = self.mesh.axis_names
        return int(self.mesh.shape[self.batch_axis]) if self.batch_axis in names else 1

    def replicated(self) -> Any:
        from jax.sharding import NamedSharding, PartitionSpec

        return NamedSharding(self.mesh, PartitionSpec())

    def shard_batch(self, tree: Any, leading: int = 0) -> Any:
        """Constrain every array of ``tree`` to be split on axis ``leading`` (inside jit).

        A batch whose size does not divide by the device count (an epoch's last, partial
        batch) stays replicated: every device computes it, the result is the same.
        """
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        n = self.num_devices
        if n == 1:
            return tree

        def constrain(a: Any) -> Any:
            if a.ndim <= leading or a.shape[leading] % n:
                return a
            spec = PartitionSpec(*([None] * leading), self.batch_axis)
            return jax.lax.with_sharding_constraint(a, NamedSharding(self.mesh, spec))

        return jax.tree.map(constrain, tree)

    def check_batch_size(self, batch_size: int, argument: str = "batch_size") -> None:
        if batch_size % self.num_devices:
            raise ValueError(
                f"`{argument}`={batch_size} is not divisible by the {self.num_devices} devices of "
                f"the {type(self).__name__} distribution's batch axis; use a multiple of "
                f"{self.num_devices} (the global batch is split evenly across devices)."
            )


class DataParallel(Distribution):
    """Data parallelism over ``devices``: one replica per device, batches split.

    On JAX each batch is sharded over a 1-D mesh of the devices and XLA inserts the
    all-reduces; results equal single-device training on the same global batches (the
    batch size must divide by the number of devices). On torch, ``kp.Model`` uses
    ``DistributedDataParallel`` when a process group is initialised (``torchrun``).

    Args:
        devices: The JAX devices to use (a list of ``jax.Device``). Default ``None``: all
            of ``jax.devices()``.

    Example:
        >>> import kompile as kp
        >>> kp.distribution.DataParallel()
        DataParallel(devices=all)
    """

    def __init__(self, devices: Any = None):
        self._devices = devices
        self._mesh: Any = None

    # ------------------------------------------------------------------ JAX
    @property
    def mesh(self) -> Any:
        if self._mesh is None:
            self._mesh = _batch_mesh(self._devices)
        return self._mesh

    def __repr__(self) -> str:
        n = len(self._devices) if self._devices is not None else "all"
        return f"DataParallel(devices={n})"


class DeviceMesh:
    """A grid of devices with named axes (Keras 3's ``keras.distribution.DeviceMesh``).

    Args:
        shape: The mesh's shape, e.g. ``(2, 4)``; its product is the number of devices.
        axis_names: One name per mesh axis, e.g. ``("batch", "model")``.
        devices: The JAX devices to lay out (a flat list, in order). Default ``None``: all
            of ``jax.devices()`` (every process's, under ``jax.distributed``).

    Raises:
        ValueError: ``axis_names`` does not name every axis once, or the number of devices
            is not the product of ``shape``.

    Example:
        >>> import kompile as kp
        >>> kp.distribution.DeviceMesh((1,), ["batch"])
        DeviceMesh(shape=(1,), axis_names=('batch',))
    """

    def __init__(self, shape: Sequence[int], axis_names: Sequence[str], devices: Any = None):
        shape, axis_names = tuple(int(n) for n in shape), tuple(axis_names)
        if len(shape) != len(axis_names) or len(set(axis_names)) != len(axis_names):
            raise ValueError(f"`axis_names` must give one distinct name per axis of `shape`="
                             f"{shape}; received {axis_names}.")
        self.shape, self.axis_names, self._devices = shape, axis_names, devices
        self._mesh: Any = None
        if devices is not None:
            self._check(len(devices))

    def _check(self, count: int) -> None:
        need = 1
        for n in self.shape:
            need *= n
        if count != need:
            raise ValueError(f"DeviceMesh `shape`={self.shape} needs {need} devices; {count} "
                             "were given (`devices`, default all of jax.devices()).")

    @property
    def devices(self) -> Any:
        """The devices as an array of ``shape``."""
        return self.mesh.devices

    @property
    def mesh(self) -> Any:
        """The ``jax.sharding.Mesh`` (axes of ``AxisType.Auto``: XLA propagates shardings)."""
        if self._mesh is None:
            import jax
            import numpy as np
            from jax.sharding import Mesh

            devices = list(self._devices) if self._devices is not None else jax.devices()
            self._check(len(devices))
            self._mesh = Mesh(np.asarray(devices, dtype=object).reshape(self.shape),
                              self.axis_names)
        return self._mesh

    def __repr__(self) -> str:
        return f"DeviceMesh(shape={self.shape}, axis_names={self.axis_names})"


class LayoutMap(MutableMapping):
    """Which mesh axis splits each dimension of each variable (Keras 3's ``LayoutMap``).

    Keys are regular expressions matched (``re.search``) against kompile's variable path
    names: the attribute path in the module joined with ``/``, e.g. ``"blocks/0/mlp/kernel"``
    (the names in the ``params/...`` entries of a weights file, without ``params/``).
    Values give one entry per array dimension: a mesh axis name, a tuple of names (the
    dimension split over several axes, e.g. ``(("batch", "model"), None)`` shards over the
    whole mesh), or ``None`` for a dimension that is not split; ``None`` alone (or ``()``)
    replicates the variable. A key equal to the path wins; otherwise exactly one
    expression may match, else looking the path up is an error.

    Args:
        device_mesh: The ``DeviceMesh`` whose axis names the values use.

    Example:
        >>> import kompile as kp
        >>> mesh = kp.distribution.DeviceMesh((1, 1), ["batch", "model"])
        >>> layout_map = kp.distribution.LayoutMap(mesh)
        >>> layout_map["dense.*kernel"] = (None, "model")
        >>> layout_map["dense_1/kernel"]
        (None, 'model')
    """

    def __init__(self, device_mesh: DeviceMesh):
        if not isinstance(device_mesh, DeviceMesh):
            raise TypeError(f"`device_mesh` must be a kp.distribution.DeviceMesh; received "
                            f"{device_mesh!r}.")
        self.device_mesh = device_mesh
        self._layouts: dict[str, tuple[str | None, ...]] = {}

    def __setitem__(self, key: str, layout: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"LayoutMap keys are regular expressions (str); received {key!r}.")
        re.compile(key)  # a bad expression fails here, naming itself
        layout = () if layout is None else getattr(layout, "axes", layout)
        names = self.device_mesh.axis_names
        ok = lambda a: a is None or a in names or (  # noqa: E731
            isinstance(a, tuple) and all(n in names for n in a))
        if isinstance(layout, str) or not isinstance(layout, Sequence) or not all(
                ok(a) for a in layout):
            raise ValueError(
                f"LayoutMap[{key!r}] must be a tuple with one entry per dimension: a mesh axis "
                f"name (one of {names}), a tuple of them, or None; received {layout!r}.")
        self._layouts[key] = tuple(layout)

    def __getitem__(self, key: str) -> tuple[str | None, ...]:
        if key in self._layouts:
            return self._layouts[key]
        found = [k for k in self._layouts if re.search(k, key)]
        if len(found) > 1:
            raise ValueError(f"Variable path {key!r} matches several LayoutMap keys: {found}. "
                             "Make the expressions exclusive (anchor them with ^ and $).")
        if not found:
            raise KeyError(key)
        return self._layouts[found[0]]

    def __delitem__(self, key: str) -> None:
        del self._layouts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layouts)

    def __len__(self) -> int:
        return len(self._layouts)

    def __repr__(self) -> str:
        return f"LayoutMap({self.device_mesh!r}, {self._layouts!r})"


class ModelParallel(Distribution):
    """Shard the parameters and the optimizer state over a device mesh (JAX), as Keras 3's
    ``keras.distribution.ModelParallel``.

    Each parameter is laid out by the first of: its ``layout_map`` entry, the sharding
    annotation it carries in the module (``nnx.with_partitioning``), replicated. The
    optimizer state of a parameter (Adam's moments, ...) is laid out like the parameter;
    other state (batch statistics, RNG, metrics, step counts) is replicated. Each batch is
    split over the mesh axis ``batch_dim_name``. The compiled step keeps these layouts
    (its outputs are constrained to them); XLA partitions the computation and inserts the
    collectives. Results equal single-device training up to float reassociation.

    Args:
        layout_map: A ``LayoutMap``; its ``device_mesh`` is the mesh. Default ``None``:
            only the module's own annotations (then ``device_mesh`` is required).
        batch_dim_name: The mesh axis the batch is split over. Default ``None``: the
            mesh's first axis.
        device_mesh: The ``DeviceMesh`` when ``layout_map`` is ``None`` (or the same mesh).

    Raises:
        TypeError: ``layout_map`` is not a ``LayoutMap`` or ``device_mesh`` not a
            ``DeviceMesh``.
        ValueError: neither gives a mesh, they disagree, or ``batch_dim_name`` is not an
            axis of the mesh.

    Example:
        >>> import kompile as kp
        >>> mesh = kp.distribution.DeviceMesh((1, 1), ["batch", "model"])
        >>> layout_map = kp.distribution.LayoutMap(mesh)
        >>> layout_map["kernel"] = (None, "model")
        >>> kp.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
        ModelParallel(shape=(1, 1), axis_names=('batch', 'model'), batch_dim_name='batch')
    """

    def __init__(self, *, layout_map: LayoutMap | None = None, batch_dim_name: str | None = None,
                 device_mesh: DeviceMesh | None = None):
        if layout_map is not None and not isinstance(layout_map, LayoutMap):
            raise TypeError(f"`layout_map` must be a kp.distribution.LayoutMap; received "
                            f"{layout_map!r}.")
        if device_mesh is not None and not isinstance(device_mesh, DeviceMesh):
            raise TypeError(f"`device_mesh` must be a kp.distribution.DeviceMesh; received "
                            f"{device_mesh!r}.")
        if layout_map is not None and device_mesh not in (None, layout_map.device_mesh):
            raise ValueError("`device_mesh` differs from `layout_map.device_mesh`; pass one.")
        mesh = device_mesh or (layout_map.device_mesh if layout_map else None)
        if mesh is None:
            raise ValueError("ModelParallel needs a mesh: pass `layout_map` or `device_mesh`.")
        self.device_mesh: DeviceMesh = mesh
        self.layout_map = layout_map
        names = self.device_mesh.axis_names
        self.batch_dim_name = names[0] if batch_dim_name is None else batch_dim_name
        if self.batch_dim_name not in names:
            raise ValueError(f"`batch_dim_name`={batch_dim_name!r} is not an axis of the mesh "
                             f"{names}.")
        self.batch_axis = self.batch_dim_name

    @property
    def mesh(self) -> Any:
        return self.device_mesh.mesh

    def layout(self, path: str, shape: tuple[int, ...], annotation: Any = None) -> Any:
        """The ``PartitionSpec`` of the variable ``path`` of ``shape``: its ``layout_map``
        entry, else its own ``annotation`` (a ``PartitionSpec`` or tuple), else replicated.

        Raises:
            ValueError: the layout has more entries than the array has dimensions, names an
                axis the mesh does not have, or splits a dimension the axis size does not
                divide.
        """
        from jax.sharding import PartitionSpec

        axes: Any = None
        if self.layout_map is not None:
            try:
                axes, source = self.layout_map[path], "LayoutMap"
            except KeyError:
                axes = None
        if axes is None:
            axes, source = tuple(annotation or ()), "sharding annotation (nnx.with_partitioning)"
        mesh = self.device_mesh
        if len(axes) > len(shape):
            raise ValueError(f"The {source} of {path!r} {axes} has {len(axes)} entries; the "
                             f"variable has shape {shape}.")
        for dim, axis in zip(shape, axes):
            for a in (axis if isinstance(axis, tuple) else (axis,)):
                if a is None:
                    continue
                if a not in mesh.axis_names:
                    raise ValueError(f"The {source} of {path!r} {axes} names the axis {a!r}; "
                                     f"the mesh has {mesh.axis_names}.")
                size = mesh.shape[mesh.axis_names.index(a)]
                if dim % size:
                    raise ValueError(f"The {source} of {path!r} {axes} splits a dimension of "
                                     f"size {dim} (shape {shape}) over the axis {a!r} of size "
                                     f"{size}, which does not divide it.")
        return PartitionSpec(*axes)

    def __repr__(self) -> str:
        m = self.device_mesh
        return (f"ModelParallel(shape={m.shape}, axis_names={m.axis_names}, "
                f"batch_dim_name={self.batch_dim_name!r})")


class FSDP(Distribution):
    """Fully sharded data parallel: every device holds a slice of each parameter and of its
    optimizer state, and computes its share of each batch (ZeRO-3). One name on both
    backends.

    On torch (a ``torch.distributed`` process group, ``torchrun``) it is FSDP2:
    ``torch.distributed.fsdp.fully_shard`` on the submodules ``shard_modules`` selects, then
    on the root module, before the optimizer is built; parameters start as process 0's; a
    mixed dtype policy becomes FSDP's ``MixedPrecisionPolicy`` (parameters gathered in the
    compute dtype, gradients reduced in float32); gradient clipping acts on the sharded
    gradients. On JAX it is a ``ModelParallel`` over a 1-D mesh of ``devices`` named
    ``"batch"``: each parameter split on its first dimension that the device count divides
    (else replicated), each batch split over the same axis.

    Args:
        shard_modules: torch only: which submodules are their own FSDP unit (gathered for
            their forward and freed after it): a ``torch.nn.Module`` class, a tuple of
            classes, or a callable ``(name, module) -> bool``. Default ``None``: the root
            module only (every parameter is still sharded; the whole model is gathered
            for the forward pass).
        reshard_after_forward: torch only: free the gathered parameters after the forward
            pass (``True``, less memory) or keep them for the backward pass (``False``,
            less communication). Default ``True``.
        devices: JAX only: the devices (default all of ``jax.devices()``).

    Raises:
        TypeError: ``shard_modules`` is none of these.

    Example:
        >>> import kompile as kp
        >>> kp.distribution.FSDP()
        FSDP(shard_modules=None, reshard_after_forward=True)
    """

    def __init__(self, shard_modules: Any = None, reshard_after_forward: bool = True,
                 devices: Any = None):
        ok = shard_modules is None or callable(shard_modules) and not isinstance(
            shard_modules, type) or isinstance(shard_modules, type) or (
            isinstance(shard_modules, tuple) and all(isinstance(c, type) for c in shard_modules))
        if not ok:
            raise TypeError("`shard_modules` must be None, a module class, a tuple of classes "
                            f"or a callable (name, module) -> bool; received {shard_modules!r}.")
        self.shard_modules, self.reshard_after_forward = shard_modules, bool(reshard_after_forward)
        self._devices = devices

    @property
    def mesh(self) -> Any:
        if self._mesh is None:
            self._mesh = _batch_mesh(self._devices)
        return self._mesh

    def selects(self, name: str, module: Any) -> bool:
        """Whether the submodule ``name`` is its own FSDP unit (torch)."""
        chosen = self.shard_modules
        if chosen is None:
            return False
        if isinstance(chosen, type | tuple):
            return isinstance(module, chosen)
        return bool(chosen(name, module))

    def layout(self, path: str, shape: tuple[int, ...], annotation: Any = None) -> Any:
        """JAX: split the first dimension the device count divides; else replicated."""
        from jax.sharding import PartitionSpec

        n = self.num_devices
        for i, dim in enumerate(shape):
            if dim % n == 0:
                return PartitionSpec(*([None] * i), "batch")
        return PartitionSpec()

    def __repr__(self) -> str:
        return (f"FSDP(shard_modules={getattr(self.shard_modules, '__name__', self.shard_modules)}"
                f", reshard_after_forward={self.reshard_after_forward})")


_GLOBAL: Distribution | None = None


def set_distribution(distribution: Distribution | None) -> None:
    """The distribution given to every ``kp.Model`` created afterwards without one.

    Args:
        distribution: A ``DataParallel`` or ``ModelParallel``, or ``None`` to go back to
            one device.

    Raises:
        TypeError: ``distribution`` is none of these.
    """
    global _GLOBAL
    if distribution is not None and not isinstance(distribution, Distribution):
        raise TypeError(f"`distribution` must be a kp.distribution.DataParallel, ModelParallel "
                        f"or None; received {distribution!r}.")
    _GLOBAL = distribution


def distribution() -> Distribution | None:
    """The global distribution set by ``set_distribution`` (``None`` by default).

    Returns:
        The ``DataParallel`` or ``ModelParallel`` new models use, or ``None``.
    """
    return _GLOBAL


__all__ = ["FSDP", "DataParallel", "DeviceMesh", "Distribution", "LayoutMap", "ModelParallel",
           "distribution", "set_distribution"]
