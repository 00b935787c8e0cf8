"""The article's midi2img path with music21, kept as a reference to check rollgen's rolls against.

The article drew piano rolls with the midi2img script: parse the MIDI with music21, split it by instrument,
collect (offset, pitch, duration) of every note and of every pitch of every chord, and set the cells
`int(offset / 0.25)` .. `int(offset / 0.25) + int(quarterLength / 0.25) - 1` of row `pitch - 21` to 255.
Here the same steps run on the whole piece with all parts in one roll, as rollgen draws it
(`rollgen.music.roll.piece_to_roll`), so the two can be compared cell for cell. The script's arithmetic is
rollgen's `floor` grid (`images.grid: floor`, which `images.mode: article` requires); rollgen's default,
`nearest`, rounds onsets and releases to the nearest step and keeps one step of a shorter note instead.

How far the two agree on the floor grid (music21 10.5, the 411 chorales of the default data set, `dvc
repro`'s MIDI):
401 rolls are identical. The 10 others differ because music21's MIDI import does not give back the
notes in the file, never because of the grid arithmetic:
- 32nd notes (8 files: bwv112.5-sc, bwv161.6, bwv185.6, bwv248.64-6, bwv248.64-s, bwv251, bwv36.4-2,
  bwv432). music21 quantises every offset and duration to a 16th or an eighth-note triplet
  (`quarterLengthDivisors=(4, 3)`) and lengthens a duration that would round to 0, so a 32nd note
  becomes a 16th and draws one cell. rollgen reads the exact ticks: the note is shorter than one step
  and draws nothing, as the article's grid says (`int(0.125 / 0.25) == 0`). (On the nearest grid it
  draws one cell at its rounded onset, not always music21's.)
- A grace note followed by another note of its pitch (bwv299). music21 exports a grace note (0 quarter
  lengths) as a note-off and a note-on at the same tick, the off first. rollgen reads the pair as the
  zero-length note it is and draws nothing, as the grid does for 0 quarter lengths. music21's reader
  ends each note-on at the next note-off of its pitch and channel (`getNotesFromEvents`), so the grace
  note sounds until the next note of its pitch ends: 4 cells of a B-flat the score does not have. A
  grace note last of its pitch (bwv315, and a second one in bwv299) has no later note-off, and music21's
  reader drops it, as rollgen does.
- bwv248.23-2, two music21 import artefacts. Notes of one track that start together and end one 16th
  apart become one chord (music21 groups notes whose ends differ by at most its quantisation unit) with
  the times of one of them, so the other gains or loses a cell. And in one part a measure that needed
  voices came out 7.5 quarters long instead of 6, which moves the rest of that part (its final chord)
  1.5 quarters later.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from rollgen.music.roll import LOWEST_PITCH, NUM_PITCHES

ARTICLE_CHUNK_STEPS = 100  # the article's maxSongLength: steps per image before the resize
IMAGE_SIZE = 106  # the article resizes every chunk to 106x106


@dataclass(frozen=True)
class ArticleNote:
    """One note as the article's get_notes collects it; times in quarter lengths from the piece's start."""

    pitch: int  # MIDI note number
    offset: Fraction
    quarter_length: Fraction


def article_notes(midi_path: Path | str) -> list[ArticleNote]:
    """The notes of a MIDI file as the article's get_notes collects them, all instrument parts together.

    music21 always parses the file itself (`forceSource=True`): no pickle from its cache is read or written.
    """
    from music21 import chord, converter, instrument, note

    score = converter.parse(str(midi_path), forceSource=True)
    # The script fell back to `mid.flat.notes` when this raised, as music21 before v8 returned None for a
    # file without instruments; music21 10 returns the flattened parts instead, so no fallback is needed.
    parts = instrument.partitionByInstrument(score)
    notes = []
    for part in parts.parts:
        for element in part.recurse():
            # A Rest is neither a Note nor a Chord (the script's `isRest` checks never fired), and MIDI drums
            # become Unpitched or PercussionChord, neither either: all are skipped, as by the script.
            if isinstance(element, note.Note):
                pitches = [element.pitch]
            elif isinstance(element, chord.Chord):
                pitches = element.pitches  # every pitch takes the chord's offset and duration
            else:
                continue
            # The script took `element.offset`: the offset in the element's own container. partitionByInstrument
            # flattens every part first, so with music21 10 that container is the part and `.offset` is the time
            # in the piece (checked on all 411 chorales). Were the notes still inside measures, `.offset` would
            # count from the start of each bar and pile every bar onto the first ones; the offset in the part
            # is what the script meant, so ask for it explicitly.
            offset = Fraction(element.getOffsetInHierarchy(part))
            quarter_length = Fraction(element.duration.quarterLength)
            # int(pitch.ps) as the script: the MIDI note number, as music21 reads no microtones from MIDI.
            notes.extend(ArticleNote(int(pitch.ps), offset, quarter_length) for pitch in pitches)
    return notes


def article_roll(midi_path: Path | str, steps_per_quarter: int = 4) -> np.ndarray:
    """The piece's roll as the article draws it: bool (NUM_PITCHES, steps), one step = 1/`steps_per_quarter`
    quarter length, row i = MIDI pitch LOWEST_PITCH + i; the whole piece, not cut into images.

    A note starts at step int(offset * steps_per_quarter) and lasts int(quarter_length * steps_per_quarter)
    steps (the script's `int(offset / 0.25)`), so a note shorter than one step draws nothing. music21 splits
    a note at barlines into tied pieces, each drawing its own cells: together the note's cells when it starts
    on the step grid; a note off the grid (a triplet) can lose a cell at the split (none did in the chorales).
    Pitches outside 21..126 are left out, as by rollgen (the script's matrix raised IndexError above and
    wrapped around to the top rows below).
    """
    cells = []
    for found in article_notes(midi_path):
        row = found.pitch - LOWEST_PITCH
        start = int(found.offset * steps_per_quarter)
        length = int(found.quarter_length * steps_per_quarter)
        if 0 <= row < NUM_PITCHES and length > 0:
            cells.append((row, start, start + length))
    steps = max((end for _, _, end in cells), default=0)
    roll = np.zeros((NUM_PITCHES, steps), dtype=bool)
    for row, start, end in cells:
        roll[row, start:end] = True
    return roll


def roll_to_article_images(roll: np.ndarray) -> list[np.ndarray]:
    """A roll cut as the article's images: uint8 (106, 106), 255 = sounding, one per 100 steps (the last one
    padded with silence), each 106x100 chunk stretched to 106 columns with LANCZOS.

    Unlike the script, a note that crosses a chunk's end goes on in the next chunk (the script stopped
    drawing that chunk at it) and all instruments share the images (the script drew one set per part).
    """
    images = []
    for start in range(0, max(roll.shape[1], 1), ARTICLE_CHUNK_STEPS):
        matrix = np.zeros((NUM_PITCHES, ARTICLE_CHUNK_STEPS), dtype=np.uint8)
        chunk = roll[:, start : start + ARTICLE_CHUNK_STEPS]
        matrix[:, : chunk.shape[1]][chunk] = 255
        images.append(np.asarray(Image.fromarray(matrix).resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)))
    return images


def article_images(midi_path: Path | str) -> list[np.ndarray]:
    """The article's 106x106 uint8 images of a MIDI file: `article_roll` at 16th-note steps, cut by
    `roll_to_article_images`."""
    return roll_to_article_images(article_roll(midi_path))


def rolls_equal(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two rolls (NUM_PITCHES, steps) sound the same cells once the shorter is padded with silence."""
    steps = max(first.shape[1], second.shape[1])
    pad = [np.pad(roll, ((0, 0), (0, steps - roll.shape[1]))) for roll in (first, second)]
    return bool((pad[0] == pad[1]).all())
