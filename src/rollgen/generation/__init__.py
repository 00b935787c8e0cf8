"""Generating pieces from a trained model: primers.py (what a piece starts from), generate.py (the sampling loop,
generate_pieces, the choice of an auto temperature and the generate stage's run), piece.py (a generated piece
in its meter, as MIDI and picture, with its primer or without) and gallery.py (MIDI, WAV and PNG per piece, and
the index page)."""
