"""Same inputs and params give byte-identical data outputs (ingest, images, windows)."""

from rollgen import files
from rollgen.data import images, ingest, windows
from rollgen.params import ImagesParams, IngestParams, WindowsParams


def build_data(source, out):
    limits, grid = IngestParams(source=str(source), workers=2), ImagesParams()
    ingest.run(limits, grid, out / "midi", out / "manifest.csv", out / "ingest.json")
    images.run(grid, limits, out / "manifest.csv", out / "midi", out / "images")
    windows.run(WindowsParams(), grid, out / "images" / "index.csv", out / "windows", out / "windows.json")


def test_two_runs_write_identical_bytes(tmp_path, chorale_midi_dir):
    build_data(chorale_midi_dir, tmp_path / "one")
    build_data(chorale_midi_dir, tmp_path / "two")
    for output in ("midi", "images", "windows"):
        assert files.sha256_tree(tmp_path / "one" / output) == files.sha256_tree(tmp_path / "two" / output), output
    for output in ("manifest.csv", "ingest.json", "windows.json"):
        assert files.sha256_file(tmp_path / "one" / output) == files.sha256_file(tmp_path / "two" / output), output


def test_music21_export_is_reproducible(tmp_path):
    sources = ingest.list_sources("music21:bach")[:3]
    first = [ingest.examine(source, IngestParams(), ImagesParams())[1] for source in sources]
    second = [ingest.examine(source, IngestParams(), ImagesParams())[1] for source in sources]
    assert first == second and all(first)
