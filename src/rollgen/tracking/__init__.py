"""MLflow: runs, logged models (next-frame and generator pyfuncs) and the model registry."""
