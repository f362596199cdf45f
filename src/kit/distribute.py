"""tf.distribute strategies, shared by every model of the kit.

  default      one device (whatever TensorFlow picks: a GPU when there is one)
  mirrored     every local GPU (with no GPU: the CPU split into two logical devices, how the tests
               run two replicas)
  multiworker  several processes or machines (MultiWorkerMirroredStrategy), each started with its
               own TF_CONFIG; every worker runs the same command on the same data; the chief
               (task 0) writes the outputs
  tpu          a TPU (Kaggle's TPU kernels), found by TPUClusterResolver
  auto         mirrored over two or more GPUs (Kaggle's T4 x2), else default (see choose)
"""
from __future__ import annotations

import json
import os
import types

from .errors import KitError

STRATEGIES = ["default", "mirrored", "multiworker", "tpu", "auto"]
MIXED_MIN_CAPABILITY = (7, 0)     # tensor cores: float16 maths pays off from Volta (T4: 7.5; P100: 6.0 does not)


def choose(gpus: list[tuple[str, tuple[int, int] | None]]) -> tuple[str, bool]:
    """(strategy, mixed precision) for the visible GPUs [(name, compute capability)]: mirrored
    over two or more, else one device; mixed_float16 only when every GPU has tensor cores (on a
    CPU float16 is slower than float32)."""
    strategy = "mirrored" if len(gpus) >= 2 else "default"
    mixed = bool(gpus) and all(cc is not None and tuple(cc) >= MIXED_MIN_CAPABILITY for _, cc in gpus)
    return strategy, mixed


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux), empty where they cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def auto_speed(gpus: list, flags: set[str]) -> tuple[bool, bool, str]:
    """(mixed precision, XLA, why) for training where the user set neither flag.

    A GPU: XLA, and float16 where every GPU has tensor cores (choose). A CPU with AMX-BF16 (Intel
    Sapphire Rapids and later): float32 without XLA, as oneDNN's convolutions there outrun XLA's
    CPU code (benchmarks.step_time, 2026-12-06: the width-32 FAT2019 step 0.59 s against 0.86 s
    with XLA). bfloat16 (--mixed-precision) is faster again there (0.43 s) but not the default: five
    FAT2019 folds scored 0.9250 out of fold in bfloat16 against 0.9322 in float32, the same day.
    Another CPU: float32 with XLA, which fuses the batch-norm and ReLU passes (2x faster on the
    EPYC measured 2026-11-30)."""
    if gpus:
        return choose(gpus)[1], True, "a GPU: XLA, float16 where every GPU has tensor cores"
    if "amx_bf16" in flags:
        return False, False, "a CPU with AMX-BF16: float32 through oneDNN, without XLA"
    return False, True, "a CPU without AMX-BF16: float32 with XLA"


def mixed_policy(gpus: list) -> str:
    """Keras' mixed policy for the device that trains: float16 on a GPU (tensor cores), bfloat16 on
    a CPU (float16 has no fast CPU path; bfloat16 runs on AMX / AVX512-BF16 through oneDNN)."""
    return "mixed_float16" if gpus else "mixed_bfloat16"


def visible_gpus() -> list[tuple[str, tuple[int, int] | None]]:
    """[(name, compute capability)] of the GPUs TensorFlow sees."""
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

    out = []
    for d in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(d) or {}
        out.append((details.get("device_name", d.name), details.get("compute_capability")))
    return out


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError as e:
        raise KitError(f"TF_CONFIG is not valid JSON ({e})") from None


def is_chief() -> bool:
    """Whether this process writes the outputs: always, except a multi-worker task other than 0
    (or than the 'chief' task where TF_CONFIG names one)."""
    task = tf_config().get("task") or {}
    return task.get("type", "worker") == "chief" or (task.get("type", "worker") == "worker"
                                                      and int(task.get("index", 0)) == 0
                                                      and "chief" not in tf_config().get("cluster", {}))


def get_strategy(name: str = "default"):
    quiet_tensorflow()
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

    if name == "auto":
        name = choose(visible_gpus())[0]
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
    if name == "multiworker":
        cluster = tf_config().get("cluster", {})
        if not cluster:
            raise KitError("--strategy multiworker needs TF_CONFIG on every worker, e.g. "
                           '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                           '"index": 0}} (index 1 on the second host)')
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)   # waits for all workers
        task = tf_config()["task"]
        print(f"strategy: MultiWorkerMirroredStrategy, {strategy.num_replicas_in_sync} replica(s) over "
              f"{sum(len(v) for v in cluster.values())} worker(s); this is {task.get('type')} {task.get('index')}"
              f"{' (chief: writes the outputs)' if is_chief() else ''}", flush=True)
        return strategy
    if name == "tpu":
        return _tpu(tf)
    raise KitError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")


def _tpu(tf):
    """TPUStrategy: on Kaggle the resolver finds the TPU from the environment. Not run here (no TPU)."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError) as e:
        raise KitError(f"--strategy tpu: no TPU found ({str(e).strip().splitlines()[0][:160]}); on Kaggle pick a "
                       f"TPU accelerator, elsewhere set TPU_NAME") from None
    strategy = tf.distribute.TPUStrategy(resolver)
    print(f"strategy: TPUStrategy over {strategy.num_replicas_in_sync} core(s)", flush=True)
    return strategy


def split_cpu(n: int = 2) -> None:
    """Expose `n` logical CPU devices (must run before TF initialises its devices)."""
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def check_batch(batch_size: int, strategy) -> None:
    n = strategy.num_replicas_in_sync
    if batch_size % n:
        raise KitError(f"--batch-size {batch_size} must divide evenly over the {n} replicas")


def prepare(model) -> None:
    """Make a compiled model trainable with Keras 3's fit under MultiWorkerMirroredStrategy.

    Keras 3.15 fails there (keras-team/keras#20585): at the start of fit it reduces a whole
    batch of per-replica values, then it reduces the scalar logged loss along an axis it lacks.
    The patch, on this model instance only, builds from one replica's batch and gives the logs
    the axis the reduction expects. Nothing changes under other strategies.
    """
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked
    from keras import tree  # TensorFlow starts here, on first use: after any feature workers forked

    strategy = model.distribute_strategy
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    cls = type(model)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, next(it))
                break
        return cls._maybe_symbolic_build(self, data_batch=data_batch)

    def expand(logs):
        return tree.map_structure(lambda v: tf.expand_dims(v, 0), logs)

    model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)
    model.train_step = types.MethodType(lambda self, d: expand(cls.train_step(self, d)), model)
    model.test_step = types.MethodType(lambda self, d: expand(cls.test_step(self, d)), model)
