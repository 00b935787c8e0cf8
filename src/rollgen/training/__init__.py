"""Training a FrameModel on the archives: the trainer, distribution, checkpoints."""
