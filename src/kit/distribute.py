"""tf.distribute strategy choice, shared by every model of the kit."""
from __future__ import annotations

import os

STRATEGIES = ["default", "mirrored"]


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def get_strategy(name: str = "default"):
    """'default': one device (whatever TF picks); 'mirrored': every visible GPU, or, with no
    GPU, the CPU split into two logical devices (how the tests run two replicas)."""
    quiet_tensorflow()
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if not tf.config.list_physical_devices("GPU"):
            try:
                split_cpu(2)
            except RuntimeError:    # devices already initialised: keep what there is
                pass
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        print(f"strategy: MirroredStrategy over {strategy.num_replicas_in_sync} device(s): {', '.join(devices)}",
              flush=True)
        return strategy
    raise ValueError(f"unknown strategy {name!r}; choose from {STRATEGIES}")


def split_cpu(n: int = 2) -> None:
    """Expose `n` logical CPU devices (must run before TF initialises its devices)."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
