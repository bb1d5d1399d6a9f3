"""Data-parallel training: which devices a model uses and how batches are split.

``DataParallel(devices=None)``: one replica of the state per device, each batch split
on its first axis. On JAX this is SPMD sharding on a 1-D mesh (``NamedSharding``): the
state and the data feed are replicated, each gathered batch is constrained to be sharded
over the ``"batch"`` axis, and XLA inserts the gradient and metric all-reduces, so
results equal single-device training on the same global batches. On torch it is
``DistributedDataParallel`` over an initialised process group (``torchrun``).
No communication code of our own.
"""

from __future__ import annotations

from typing import Any


class DataParallel:
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
            import jax
            import numpy as np
            from jax.sharding import Mesh

            devices = self._devices if self._devices is not None else jax.devices()
            self._mesh = Mesh(np.asarray(devices), ("batch",))
        return self._mesh

    @property
    def num_devices(self) -> int:
        return int(self.mesh.devices.size)

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

        def constrain(a: Any) -> Any:
            if a.ndim <= leading or a.shape[leading] % self.num_devices:
                return a
            spec = PartitionSpec(*([None] * leading), "batch")
            return jax.lax.with_sharding_constraint(a, NamedSharding(self.mesh, spec))

        return jax.tree.map(constrain, tree)

    def check_batch_size(self, batch_size: int, argument: str = "batch_size") -> None:
        if batch_size % self.num_devices:
            raise ValueError(
                f"`{argument}`={batch_size} is not divisible by the {self.num_devices} devices of "
                f"the DataParallel distribution; use a multiple of {self.num_devices} (the "
                "global batch is split evenly across devices)."
            )

    def __repr__(self) -> str:
        n = len(self._devices) if self._devices is not None else "all"
        return f"DataParallel(devices={n})"


_GLOBAL: DataParallel | None = None


def set_distribution(distribution: DataParallel | None) -> None:
    """The distribution given to every ``kp.Model`` created afterwards without one.

    Args:
        distribution: A ``DataParallel``, or ``None`` to go back to one device.
    """
    global _GLOBAL
    if distribution is not None and not isinstance(distribution, DataParallel):
        raise TypeError(f"`distribution` must be a kp.distribution.DataParallel or None; "
                        f"received {distribution!r}.")
    _GLOBAL = distribution


def distribution() -> DataParallel | None:
    """The global distribution set by ``set_distribution`` (``None`` by default).

    Returns:
        The ``DataParallel`` new models use, or ``None``.
    """
    return _GLOBAL


__all__ = ["DataParallel", "distribution", "set_distribution"]
