"""The data stages' library: ingest a MIDI folder, draw 106x106 images, cut them into split archives."""
