"""Scores: every frame's NLL, the transposition ensemble, baselines, and generated music's quality."""
