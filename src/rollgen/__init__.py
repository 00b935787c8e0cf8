"""rollgen: MIDI -> piano rolls -> Keras next-frame models -> new MIDI and WAV, as a DVC pipeline.

Importing rollgen (every stage and the `rollgen` command do, before TensorFlow or MLflow) quiets what they
print that reads as a failure and is none. A variable the user sets wins.
"""

import logging
import os
import shutil
import warnings
from pathlib import Path


def has_nvidia_gpu() -> bool:
    """Whether this machine shows an NVIDIA GPU: a /dev/nvidia0 device, or the driver's nvidia-smi program."""
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


# TensorFlow reads its C++ log level once, at import. With no GPU its CUDA probe logs `failed call to
# cuInit` as an error on every run: 3 keeps errors out too. With a GPU that same error is a real problem
# (a driver TensorFlow cannot use), so there only infos and warnings go (2).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_nvidia_gpu() else "3")

# TensorFlow turns its oneDNN kernels on by itself only on recent Intel processors; on others (AMD's EPYC) a
# chorale training epoch took ~15% longer without them. The same machine and settings give the same numbers.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# MLflow's advice to log an input example, printed whenever the next-frame model is logged: it is logged
# without one on purpose (MLflow would load the model again, after training, to check the example).
warnings.filterwarnings(
    "ignore", message=r"(\x1b\[[0-9;]*m)?An input example was not provided", category=UserWarning, module="mlflow"
)


class _NoGpuMetricsNote(logging.Filter):
    """Drops MLflow's `Skip logging GPU metrics` line on machines without a GPU, where nothing is skipped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Skip logging GPU metrics")


if not has_nvidia_gpu():
    logging.getLogger("mlflow.system_metrics.system_metrics_monitor").addFilter(_NoGpuMetricsNote())

__version__ = "0.1.0"
