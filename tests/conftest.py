"""Shared test inputs: MIDI built from known events, a few real chorales from music21's corpus, and one tiny
`dvc repro` of the whole project for the end-to-end tests."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import py_midicsv
import pytest

from rollgen.music.corpus import music21_corpus_files, score_to_midi
from tests.browser import Page, chromium, find_chromium
from tests.repro import make_tiny_repro

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


@pytest.fixture(scope="session")
def tiny_repro(tmp_path_factory) -> Path:
    """The project with tiny params after one `dvc repro`, committed in a git repo of its own. Shared by the
    session: tests that change a project change a `tests.repro.copy_project` of it."""
    return make_tiny_repro(tmp_path_factory.mktemp("tiny-repro"))


@pytest.fixture
def page(tmp_path) -> Iterator[Page]:
    """A tab of a headless Chromium (see tests/browser.py); the test is skipped where none is installed."""
    if find_chromium() is None:
        pytest.skip("Chromium is not installed: apt-get install chromium (scripts/setup.sh does it)")
    with chromium(tmp_path / "chromium") as tab:
        yield tab


SAVED_FOR_PEOPLE: list[Path] = []


@pytest.fixture(scope="session")
def saved_for_people() -> Callable[[str], Path]:
    """Gives paths under build/test-artifacts/ for screenshots and such, which pytest's summary then lists."""
    folder = Path(__file__).resolve().parents[1] / "build" / "test-artifacts"  # /build/ is git-ignored

    def path_for(name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        SAVED_FOR_PEOPLE.append(folder / name)
        return folder / name

    return path_for


def pytest_terminal_summary(terminalreporter):
    saved = [path for path in SAVED_FOR_PEOPLE if path.exists()]
    if saved:
        terminalreporter.section("saved for people to look at")
        for path in saved:
            terminalreporter.write_line(str(path))
