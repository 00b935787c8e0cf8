"""Shared test inputs: MIDI built from known events, and a few real chorales from music21's corpus."""

from __future__ import annotations

import io
from pathlib import Path

import py_midicsv
import pytest

from rollgen.corpus import music21_corpus_files, score_to_midi

CHORALES = ("bwv1.6.mxl", "bwv10.7.mxl", "bwv101.7.mxl", "bwv102.7.mxl", "bwv103.6.mxl", "bwv104.6.mxl")


def build_midi(tracks: list[list[str]], ticks_per_quarter: int = 480) -> bytes:
    """MIDI bytes from midicsv event lines per track, e.g. "60, Note_on_c, 0, 60, 90" (time, type, args)."""
    lines = [f"0, 0, Header, 1, {len(tracks)}, {ticks_per_quarter}"]
    for number, events in enumerate(tracks, start=1):
        lines.append(f"{number}, 0, Start_track")
        # midicsv wants each track in time order; the sort is stable, so same-time events keep theirs.
        ordered = sorted(events, key=lambda event: int(event.split(",")[0]))
        lines.extend(f"{number}, {event}" for event in ordered)
        last = max([int(event.split(",")[0]) for event in events] or [0])
        lines.append(f"{number}, {last}, End_track")
    lines.append("0, 0, End_of_file")
    buffer = io.BytesIO()
    py_midicsv.FileWriter(buffer).write(py_midicsv.csv_to_midi(lines))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def chorale_files() -> list[Path]:
    """Paths of a few Bach chorales in music21's corpus."""
    _, scores = music21_corpus_files("bach")
    by_name = {path.name: path for path in scores}
    return [by_name[name] for name in CHORALES]


@pytest.fixture(scope="session")
def chorale_midi_dir(tmp_path_factory, chorale_files) -> Path:
    """A folder of the chorales exported to MIDI by music21."""
    folder = tmp_path_factory.mktemp("chorales")
    for path in chorale_files[:4]:
        (folder / f"{path.stem}.mid").write_bytes(score_to_midi(path))
    return folder
