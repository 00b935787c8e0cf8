"""Generating pieces from a trained model: primers, sampling loop, MIDI/WAV/PNG and the gallery page."""
