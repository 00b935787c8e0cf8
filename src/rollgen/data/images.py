"""Piano rolls <-> 106x106 grayscale PNGs (bright = sounding), the article's midi2image/image2midi.

A lossless image holds the roll's levels as pixels (rollgen.music.roll: 0 silent, HELD 170, ONSET 255), so a
re-struck note comes back as two (`image_levels`); the article's image2midi still reads it, anything bright
sounding. An article image is the article's: what sounds white (0/255), stretched with LANCZOS, no onsets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from rollgen import files, paths
from rollgen.music.meter import METER_COLUMNS, Meter
from rollgen.music.midi import MidiError, read_midi
from rollgen.music.roll import (
    HELD,
    NUM_PITCHES,
    ONSET,
    max_steps_for,
    onsets,
    piece_to_roll,
    roll_to_midi,
    sounding,
    strike_runs,
)
from rollgen.params import ImagesParams, IngestParams

IMAGE_SIZE = 106  # the article resizes every chunk to 106x106
MODES = ("lossless", "article")
INDEX_COLUMNS = ["image", "piece", "path", "sha256", "chunk", "start_step", "steps"]
METERS_NAME = "meters.csv"  # beside index.csv: every piece's time signatures in steps (rollgen.music.meter)
REJECTED_NAME = "rejected.csv"  # beside index.csv: accepted pieces this stage could not draw, and why
REJECTED_COLUMNS = ["piece", "path", "reason"]


def roll_to_images(roll: np.ndarray, mode: str, chunk_steps: int) -> list[np.ndarray]:
    """The roll (uint8 levels, or bool: each run struck at its first step) cut into chunks of `chunk_steps`
    steps, each a uint8 (106, 106) image; rows are pitches (row 0 = MIDI 21, as the article), columns are
    steps, the last chunk padded with silence.

    `lossless`: chunks of 106 steps, so the 106x106 "resize" is the identity; pixels are the levels.
    `article`: what sounds white (255), the article's picture, in chunks of `chunk_steps` (100 in the
    article) stretched to 106 columns with LANCZOS.
    """
    if mode not in MODES:
        raise ValueError(f"images.mode must be one of {MODES}, not '{mode}'")
    if mode == "lossless" and chunk_steps != IMAGE_SIZE:
        raise ValueError(f"lossless images need chunk_steps = {IMAGE_SIZE}, not {chunk_steps}")
    roll = np.asarray(roll)
    steps = roll.shape[1]
    count = max(1, -(-steps // chunk_steps))
    # One padded copy of the whole roll, cut into contiguous chunks: no per-chunk allocation or masking.
    pixels = np.zeros((NUM_PITCHES, count * chunk_steps), dtype=np.uint8)
    if mode == "article":
        np.multiply(sounding(roll), 255, out=pixels[:, :steps], casting="unsafe")
    else:
        pixels[:, :steps] = strike_runs(roll, time_axis=1) if roll.dtype == bool else roll
    chunks = list(pixels.reshape(NUM_PITCHES, count, chunk_steps).transpose(1, 0, 2).copy())
    if mode == "article":
        chunks = [
            np.asarray(Image.fromarray(chunk).resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)) for chunk in chunks
        ]
    return chunks


def save_png(image: np.ndarray, target: Path) -> None:
    """Writes a uint8 grayscale image as PNG, atomically."""
    with files.atomic_path(target) as tmp:
        Image.fromarray(image, mode="L").save(tmp, format="PNG")


def load_png(path: Path) -> np.ndarray:
    """A PNG as a uint8 grayscale array (colour images are averaged to gray, as image2midi did)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def image_to_midi(image: np.ndarray, steps_per_quarter: int, tempo_bpm: float) -> bytes:
    """MIDI bytes for one roll image drawn at `steps_per_quarter`: the article's image2midi, one piano note per
    run of bright pixels (a lossless image's onsets are not read: `image_levels` reads them)."""
    return roll_to_midi(sounding(image), steps_per_quarter, tempo_bpm=tempo_bpm)


def image_levels(image: np.ndarray) -> np.ndarray:
    """The roll levels (uint8 0, HELD, ONSET) of a lossless image, each pixel to the level it is nearest above
    half-way (rollgen.music.roll's `sounding`, `onsets`): `roll_to_midi` writes it with its re-struck notes.
    Only for lossless images: an article image (0/255) would read as a note struck at every step."""
    return np.where(onsets(image), ONSET, np.where(sounding(image), HELD, 0)).astype(np.uint8)


def image_name(piece: str, chunk: int) -> str:
    return f"{Path(piece).stem}_{chunk:03d}.png"


def run(
    params: ImagesParams,
    ingest: IngestParams,
    manifest_path: Path = paths.MANIFEST,
    midi_dir: Path = paths.MIDI_DIR,
    images_dir: Path = paths.IMAGES_DIR,
) -> pd.DataFrame:
    """Draws every accepted piece as 106x106 PNG chunks and writes their index (index.csv in the folder).

    index.csv: one row per image, `INDEX_COLUMNS`; `piece` is the MIDI file in `midi_dir`, `path` the input
    it came from (the manifest's, relative to the source). meters.csv: one row per time-signature segment
    per piece, `rollgen.music.meter.METER_COLUMNS`, steps at `params.steps_per_quarter` (see
    `rollgen.music.meter`). rejected.csv: `REJECTED_COLUMNS`, a piece that cannot be read or drawn, which the
    stage skips.

    The MIDI is read as ingest read it (`ingest.include_drums`, `ingest.parser`), and drawn on the grid ingest
    counted it on (`params.grid`, `params.steps_per_quarter`) with the step limit of `ingest.max_quarters`
    (rollgen.music.roll.max_steps_for), which holds every accepted piece: rejected.csv stays empty unless the
    manifest and `midi_dir` come from other params.
    """
    manifest = pd.read_csv(manifest_path, keep_default_na=False, dtype={"sha256": str, "midi": str, "path": str})
    accepted = manifest[manifest["status"] == "accepted"]
    max_steps = max_steps_for(ingest.max_quarters, params.steps_per_quarter)
    rows, meter_rows, rejected = [], [], []
    with files.atomic_dir(images_dir) as folder:
        for piece in tqdm(accepted.itertuples(), total=len(accepted), desc="images", unit="piece"):
            try:
                midi = read_midi(
                    (midi_dir / piece.midi).read_bytes(), include_drums=ingest.include_drums, parser=ingest.parser
                )
                roll, _ = piece_to_roll(midi, params.steps_per_quarter, max_steps=max_steps, grid=params.grid)
            except MidiError as error:
                rejected.append((piece.midi, piece.path, str(error)))
                continue
            except OSError as error:
                rejected.append((piece.midi, piece.path, f"cannot read: {error.strerror or error}"))
                continue
            meter_rows += [(piece.midi, *row) for row in Meter.from_piece(midi, params.steps_per_quarter).to_rows()]
            for chunk, image in enumerate(roll_to_images(roll, params.mode, params.chunk_steps)):
                name = image_name(piece.midi, chunk)
                save_png(image, folder / name)
                start = chunk * params.chunk_steps
                steps = min(params.chunk_steps, roll.shape[1] - start)
                rows.append((name, piece.midi, piece.path, piece.sha256, chunk, start, steps))
        index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
        files.write_csv(folder / paths.IMAGES_INDEX.name, index)
        files.write_csv(folder / METERS_NAME, pd.DataFrame(meter_rows, columns=METER_COLUMNS))
        files.write_csv(folder / REJECTED_NAME, pd.DataFrame(rejected, columns=REJECTED_COLUMNS))
    return index
