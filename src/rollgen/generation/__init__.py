"""Generating pieces from a trained model: primers.py (what a piece starts from), generate.py (the sampling loop,
generate_pieces and the generate stage's run) and gallery.py (MIDI, WAV and PNG per piece, and the index page)."""
