"""A collection of MIDI files with what real-world files hold and Bach chorales do not: staccato, fast runs,
triplets at resolutions they do not divide, grace notes and mordents, tempo changes, unisons and overlaps,
and a humanised performance. Written here, never downloaded; the same bytes on every run (seeded)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from tests.conftest import build_midi

# (pitch, onset, duration) in quarter notes, and optionally the MIDI channel (9 = drums; 0 when left out)
Note = tuple


def to_midi(notes: list[Note], ticks_per_quarter: int, tempos: list[tuple[float, int]] = ()) -> bytes:
    """A type 1 MIDI file of notes in quarter notes, rounded to ticks as a sequencer stores them: one track
    per channel, in channel order, the first with `tempos`, (quarter, microseconds per quarter)."""
    channels = sorted({note[3] if len(note) > 3 else 0 for note in notes})
    lines: dict[int, list[tuple[int, int, str]]] = {channel: [] for channel in channels}
    for quarter, tempo in tempos:
        lines[channels[0]].append((round(quarter * ticks_per_quarter), 0, f"Tempo, {tempo}"))
    for pitch, onset, duration, *channel in notes:
        channel = channel[0] if channel else 0
        start, end = round(onset * ticks_per_quarter), round((onset + duration) * ticks_per_quarter)
        lines[channel].append((start, 1, f"Note_on_c, {channel}, {pitch}, 80"))
        lines[channel].append((end, 0, f"Note_off_c, {channel}, {pitch}, 0"))  # offs first at one tick
    tracks = [[f"{tick}, {event}" for tick, _, event in sorted(events)] for events in lines.values()]
    return build_midi(tracks, ticks_per_quarter)


C_MAJOR = [0, 2, 4, 5, 7, 9, 11]


def scale(start: int, count: int, step: int = 1) -> list[int]:
    """`count` notes of C major from MIDI note `start` (in C major), up (step 1) or down (-1)."""
    degree = C_MAJOR.index(start % 12) + 7 * (start // 12)
    return [12 * ((degree + i * step) // 7) + C_MAJOR[(degree + i * step) % 7] for i in range(count)]


def staccato(rng: np.random.Generator) -> list[Note]:
    """A melody of detached 8ths and 16ths, 0.1-0.3 quarters long, over staccato chords on the beats; a
    pitch repeats at an 8th's distance or more (repeated 16ths: see `beyond_16ths`)."""
    notes, pitch, onset, value = [], 72, Fraction(0), Fraction(1, 2)
    for _ in range(160):
        if value == Fraction(1, 4) or rng.random() < 0.8:
            pitch = scale(pitch, 2, int(rng.choice([-1, 1])))[1]
        value = Fraction(1, 2) if rng.random() < 0.5 else Fraction(1, 4)
        notes.append((pitch, onset, Fraction(int(rng.integers(10, 31)), 100)))
        onset += value
    for beat in range(int(onset)):
        notes += [(pitch, Fraction(beat), Fraction(1, 4), 1) for pitch in (48, 55, 64)]
    return notes


def fast_runs() -> list[Note]:
    """32nd- and 64th-note scale runs up to a held note and down from one, over held bass notes."""
    notes = []
    for bar in range(8):
        start = Fraction(4 * bar)
        notes.append((36 + bar % 3, start, Fraction(4)))
        up = scale(60, 16)  # 16 32nds: 2 quarters
        notes += [(pitch, start + Fraction(i, 8), Fraction(1, 8)) for i, pitch in enumerate(up)]
        notes.append((scale(60, 17)[-1], start + 2, Fraction(1)))
        down = scale(96, 16, -1)  # 16 64ths: one quarter
        notes += [(pitch, start + 3 + Fraction(i, 16), Fraction(1, 16)) for i, pitch in enumerate(down)]
    return notes


def triplets() -> list[Note]:
    """Eighth and quarter triplets, and 16th sextuplet arpeggios (at 1000 ticks a quarter, none on a tick)."""
    notes = []
    for bar in range(8):
        start = Fraction(4 * bar)
        notes += [(pitch, start + Fraction(i, 3), Fraction(1, 3)) for i, pitch in enumerate(scale(67, 6))]
        notes += [(pitch, start + 2 + Fraction(2 * i, 3), Fraction(2, 3)) for i, pitch in enumerate((79, 77, 76))]
        arpeggio = [48, 52, 55, 60, 55, 52] * 4
        notes += [(pitch, start + Fraction(i, 6), Fraction(1, 6)) for i, pitch in enumerate(arpeggio)]
    return notes


def grace_notes() -> list[Note]:
    """Quarter notes, each with a grace note a 16th, 32nd or 64th before it, a step above."""
    notes = []
    for beat in range(32):
        main = scale(62, 12)[beat % 12]
        grace = Fraction(1, 2 ** (2 + beat % 3))
        notes += [(scale(main, 2)[1], max(Fraction(0), beat - grace), grace), (main, Fraction(beat), Fraction(1))]
        notes.append((38 + 12 * (beat % 2), Fraction(beat), Fraction(1, 2), 1))
    return notes


def beyond_16ths() -> list[Note]:
    """Music finer than 16ths: repeated staccato 16ths, mordents (main, upper, main in a 16th) and 32nd-note
    trills, which a grid of 16ths draws squeezed, each note struck at a step of its own, and repeated 32nds
    (a tremolo), which it cannot draw apart: of each two strikes within a step, one is merged by the grid."""
    notes = []
    for bar in range(4):
        start = Fraction(4 * bar)
        notes += [(67, start + Fraction(i, 4), Fraction(1, 5)) for i in range(4)]
        notes += [(74, start + 1, Fraction(1, 12)), (76, start + Fraction(13, 12), Fraction(1, 12))]
        notes.append((74, start + Fraction(7, 6), Fraction(5, 6)))
        notes += [(72 + 2 * (i % 2), start + 2 + Fraction(i, 8), Fraction(1, 8)) for i in range(16)]
        notes += [(79, start + 3 + Fraction(i, 8), Fraction(1, 8)) for i in range(8)]
    return notes


def chorale_like(rng: np.random.Generator, bars: int = 8) -> list[Note]:
    """Four voices of quarters and eighths, one channel each, with repeated notes (legato: each release is the
    next onset) and unisons where the voices cross."""
    notes = []
    for voice, (low, high) in enumerate(((60, 79), (55, 72), (48, 67), (36, 60))):
        onset, pitch = Fraction(0), (low + high) // 2
        while onset < 4 * bars:
            value = Fraction(1) if rng.random() < 0.7 else Fraction(1, 2)
            notes.append((pitch, onset, value, voice))
            pitch = int(np.clip(pitch + rng.integers(-3, 4), low, high))
            onset += value
    return notes


def humanised(notes: list[Note], rng: np.random.Generator) -> list[Note]:
    """A performance of `notes`: onsets early or late by up to 1/24 quarter, each held 80-98% of its value."""
    played = []
    for pitch, onset, duration, *channel in notes:
        onset = max(Fraction(0), onset + Fraction(int(rng.integers(-10, 11)), 240))
        played.append((pitch, onset, duration * Fraction(int(rng.integers(80, 99)), 100), *channel))
    return played


def write_collection(folder: Path) -> list[Path]:
    """Writes the collection's MIDI files into `folder`; gives their paths."""
    rng = np.random.default_rng(12)
    melody = chorale_like(rng)
    doubled = melody + [(pitch, onset, duration, 4 + voice) for pitch, onset, duration, voice in melody[:60]]
    legato = [(pitch, onset, duration + Fraction(1, 8), voice) for pitch, onset, duration, voice in chorale_like(rng)]
    drums = [(36 + 6 * (beat % 2), Fraction(beat), Fraction(1, 4), 9) for beat in range(32)]
    files = {
        "staccato.mid": to_midi(staccato(rng), 480, [(0, 428_571)]),
        "fast runs.mid": to_midi(fast_runs(), 96),
        "triplets.mid": to_midi(triplets(), 1000),
        "grace notes.mid": to_midi(grace_notes(), 480),
        "tempo changes.mid": to_midi(melody, 384, [(4 * bar, 400_000 + 40_000 * bar) for bar in range(8)]),
        "unisons.mid": to_midi(doubled, 480),  # the soprano doubled on a second channel
        "overlapping legato.mid": to_midi(legato + drums, 480),  # each note held past the next onset
        "performance.mid": to_midi(humanised(chorale_like(rng) + drums + [(10, 0, 4)], rng), 480),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]
