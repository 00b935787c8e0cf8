"""Next-frame models: layers, builders, the one FrameModel interface, training batches and samplers."""
