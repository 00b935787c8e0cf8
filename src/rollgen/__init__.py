"""rollgen: MIDI -> piano rolls -> Keras next-frame models -> new MIDI and WAV, as a DVC pipeline."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) buries the pipeline's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
