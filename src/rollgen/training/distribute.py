"""Where training computes: a tf.distribute strategy (this device, every local GPU, or a cluster of workers),
which process writes, and how a batch is cut into slices that run side by side on a CPU's cores."""

from __future__ import annotations

import os

import tensorflow as tf

from rollgen.errors import RollgenError
from rollgen.training.local_workers import exposure_warning

STRATEGIES = ("none", "mirrored", "multi_worker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """none: this process's default device; mirrored: every local GPU; multi_worker: the workers TF_CONFIG names.

    Create it first thing: MultiWorkerMirroredStrategy must exist before TensorFlow runs any other op. Its gRPC
    server listens on every interface; outside a private network (`rollgen workers`) a worker says so.
    """
    if name != "multi_worker" and os.environ.get("TF_CONFIG"):
        raise RollgenError(
            f"TF_CONFIG names a cluster but train.distribute is '{name}': every worker would train alone and write "
            "the same files; set train.distribute: multi_worker, or unset TF_CONFIG"
        )
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise RollgenError("train.distribute multi_worker needs TF_CONFIG (the cluster and this worker's task)")
        warning = exposure_warning(os.environ["TF_CONFIG"])
        if warning:
            print(warning, flush=True)
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise RollgenError(f"train.distribute must be one of {STRATEGIES}, not '{name}'")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes files and logs to MLflow: always, except for workers other than the first."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


def usable_cores() -> int:
    """The CPU cores this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def batch_slices(setting: int | str, rows: int) -> int:
    """train.slices as a number: auto is one slice per CPU core this process may use (at most `rows`, a
    batch's rows; a batch with fewer rows than slices is not cut), and 1 where a GPU computes (one device
    runs one chain at a time)."""
    if setting != "auto":
        return int(setting)
    if tf.config.list_physical_devices("GPU"):
        return 1
    return max(1, min(usable_cores(), rows))


def share_cores(slices: int) -> None:
    """Runs `slices` ops side by side (inter-op threads), each on its share of the cores (intra-op threads).

    Small ops split over all cores spend much of their time waiting for each other: on 2 cores one chain kept
    ~1.6 busy, and two half-batch chains of one thread each took a step in ~40 ms instead of ~53. TensorFlow
    reads these settings once, before its first op; a process that has already run one keeps its threads.
    """
    if slices <= 1:
        return
    cores = usable_cores()
    intra, inter = max(1, cores // slices), slices
    threading = tf.config.threading
    if (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()) == (intra, inter):
        return
    try:
        threading.set_intra_op_parallelism_threads(intra)
        threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as error:
        print(f"train: TensorFlow has already started, so its threads stay as they are ({error})", flush=True)


def distribute_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shards every global batch across workers by data (the frames live in memory, not in files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
