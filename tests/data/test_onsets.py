"""A re-struck note survives the whole data path: MIDI -> roll -> lossless PNGs (the images stage) -> archive
(the windows stage) -> MIDI, each note struck where the file strikes it, on the grid."""

from fractions import Fraction

import numpy as np
import pandas as pd

from rollgen.data import archive, images, windows
from rollgen.music.midi import read_midi
from rollgen.music.roll import HELD, LOWEST_PITCH, MERGED_IN_FILE, ONSET, piece_to_roll, roll_to_midi
from rollgen.params import ImagesParams, IngestParams, WindowsParams
from tests.defaults import GRID, STEPS_PER_QUARTER, TEMPO_BPM
from tests.real_world import to_midi

# (pitch, onset, duration) in quarter notes, and a MIDI channel: 4 steps a quarter, 106 steps an image.
RESTRUCK = [
    *[(60, Fraction(q), Fraction(1)) for q in range(4)],  # repeated quarters, each released at the next onset
    (64, Fraction(0), Fraction(4)),  # a long E4, struck again while it sounds (a second hand, a pedal) ...
    (64, Fraction(2), Fraction(1), 1),  # ... on another channel: the second strike ends the first note there
    (67, Fraction(0), Fraction(1)),  # a unison: two voices strike G4 at once, one note
    (67, Fraction(0), Fraction(1), 1),
    # Repeated eighths of C5 across the images' seam (step 106 = quarter 26.5), one struck on the seam, and a
    # C3 held across it.
    *[(72, Fraction(50 + i, 2), Fraction(1, 2)) for i in range(6)],
    (48, Fraction(26), Fraction(1)),
]


def file_onsets(notes: list[tuple]) -> set[tuple[int, int]]:
    """(pitch, step) of every onset in the notes, 4 steps a quarter."""
    return {(note[0], int(note[1] * 4)) for note in notes}


def test_a_restruck_note_survives_midi_png_archive_midi(tmp_path):
    midi_dir, images_dir = tmp_path / "midi", tmp_path / "images"
    midi_dir.mkdir()
    (midi_dir / "restruck.mid").write_bytes(to_midi(RESTRUCK, 480))
    roll, dropped = piece_to_roll(read_midi((midi_dir / "restruck.mid").read_bytes()), STEPS_PER_QUARTER, grid=GRID)
    assert dropped == {MERGED_IN_FILE: 1}  # the unison, once
    assert roll[60 - LOWEST_PITCH, :16].tolist() == [ONSET, HELD, HELD, HELD] * 4

    manifest = pd.DataFrame(
        {"path": ["restruck.mid"], "sha256": ["e" * 64], "status": "accepted", "reason": "", "midi": ["restruck.mid"]}
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    index = images.run(ImagesParams(), IngestParams(), tmp_path / "manifest.csv", midi_dir, images_dir)
    assert len(index) == 2  # 112 steps: two images
    pictures = [images.load_png(images_dir / name) for name in index.image]
    assert set(np.unique(np.concatenate(pictures, axis=1))) == {0, HELD, ONSET}  # the levels, as pixels
    assert pictures[1][72 - LOWEST_PITCH, 0] == ONSET and pictures[1][48 - LOWEST_PITCH, 0] == HELD  # the seam

    only_train = WindowsParams(val_fraction=0.0, test_fraction=0.0)
    windows.run(only_train, ImagesParams(), images_dir / "index.csv", tmp_path / "windows", tmp_path / "w.json")
    data = archive.load_sequences("train", tmp_path / "windows")
    np.testing.assert_array_equal(data.sequence(0).T, roll)  # the images joined back: the roll, level for level

    again = read_midi(roll_to_midi(data.sequence(0).T, STEPS_PER_QUARTER, tempo_bpm=TEMPO_BPM))
    steps = [Fraction(int(tick) * 4, again.ticks_per_quarter) for tick in again.starts]
    assert all(step.denominator == 1 for step in steps)  # every onset on the grid
    assert set(zip(again.pitches.tolist(), (int(step) for step in steps))) == file_onsets(RESTRUCK)
    assert len(again.pitches) == len(RESTRUCK) - 1  # every note but the unison's second voice
    # The long E4 ends where it is struck again; the second strike sounds on to the first one's release.
    e4 = again.pitches == 64
    assert (again.starts[e4] * 4 // again.ticks_per_quarter).tolist() == [0, 8]
    assert (again.ends[e4] * 4 // again.ticks_per_quarter).tolist() == [8, 16]
    assert (piece_to_roll(again, STEPS_PER_QUARTER, grid=GRID)[0] == roll).all()  # and draws the same roll again
