"""The rollgen command line, as a user runs it."""

from fractions import Fraction

import keras
from PIL import Image
from typer.testing import CliRunner

from rollgen.cli import app
from rollgen.data.archive import load_sequences
from rollgen.generation import generate
from rollgen.models import frame_model
from rollgen.models.builders import build_article
from rollgen.music import pictures
from rollgen.music.midi import read_midi
from rollgen.music.roll import piece_to_roll, sounding
from rollgen.params import validate
from tests.archives import random_pieces, sequences, write_archive
from tests.conftest import build_midi
from tests.defaults import GRID, STEPS_PER_QUARTER, TEMPO_BPM
from tests.real_world import beyond_16ths, to_midi

runner = CliRunner()


def test_roll_draws_a_readable_picture(tmp_path, chorale_midi_dir):
    midi = sorted(chorale_midi_dir.iterdir())[0]
    result = runner.invoke(app, ["roll", str(midi), "-o", str(tmp_path / "roll.png")])
    assert result.exit_code == 0, result.output
    assert "steps" in result.output
    picture = Image.open(tmp_path / "roll.png")
    assert picture.mode == "RGB" and picture.size[1] == 106 * 3


def test_roll_draws_the_files_own_bars(tmp_path):
    """A waltz's picture has bar lines every three beats, not 4/4's."""
    import numpy as np

    from rollgen.music.meter import Meter, frame_positions
    from rollgen.music.midi import write_midi

    waltz = write_midi([48, 55, 55] * 4, [Fraction(beat) for beat in range(12)], [Fraction(1)] * 12,
                       tempo_bpm=TEMPO_BPM, time_signatures=[(Fraction(0), 3, 4)])  # fmt: skip
    (tmp_path / "waltz.mid").write_bytes(waltz)
    result = runner.invoke(app, ["roll", str(tmp_path / "waltz.mid"), "-o", str(tmp_path / "waltz.png")])
    assert result.exit_code == 0, result.output
    roll, _ = piece_to_roll(read_midi(waltz), steps_per_quarter=4, grid=GRID)
    three = frame_positions(Meter.from_steps([(0, 3, 4)], 4), roll.shape[1])
    drawn = np.asarray(Image.open(tmp_path / "waltz.png"))
    np.testing.assert_array_equal(drawn, np.asarray(pictures.roll_picture(roll, 4, three, 0)))
    assert not np.array_equal(drawn, np.asarray(pictures.roll_picture(roll, 4, None, 0)))


def test_roll_reports_a_bad_file_by_name(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"nope")
    result = runner.invoke(app, ["roll", str(bad), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1
    assert "bad.mid: not a MIDI file" in result.output


def test_render_and_generate(tmp_path, chorale_midi_dir):
    midi = sorted(chorale_midi_dir.iterdir())[0]
    result = runner.invoke(app, ["render", str(midi), str(tmp_path / "out.wav")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.wav").stat().st_size > 100_000

    keras.utils.set_random_seed(0)
    build_article(context=9).save(tmp_path / "model.keras")
    write_archive(tmp_path / "test.npz", sequences(random_pieces(2, 40)))
    result = runner.invoke(
        app,
        ["generate", "--model", str(tmp_path / "model.keras"), "--windows", str(tmp_path / "test.npz"),
         "--out", str(tmp_path / "gen"), "--num", "2", "--steps", "16", "--sampling", "threshold",
         "--threshold", "0.3", "--primer-steps", "12"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "gen").iterdir()) == [
        "000.mid", "000.png", "000.wav", "001.mid", "001.png", "001.wav", "index.html",
    ]  # fmt: skip
    result = runner.invoke(app, ["generate", "--model", str(tmp_path / "model.keras"), "--windows", "none.npz"])
    assert result.exit_code == 2 and "none.npz does not exist" in result.output

    # A MIDI file as the primer: no windows needed; a file shorter than --primer-steps gives what it has.
    short = tmp_path / "short.mid"
    short.write_bytes(build_midi([["0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0"]]))
    for primer, primer_steps in ((midi, 16), (short, 4)):
        result = runner.invoke(
            app,
            ["generate", "--model", str(tmp_path / "model.keras"), "--primer", str(primer), "--windows", "none.npz",
             "--out", str(tmp_path / "primed"), "--num", "1", "--steps", "8", "--min-notes", "1", "--max-notes", "3",
             "--temperature", "1"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "index.html: 1 pieces" in result.output
        primed = sounding(
            piece_to_roll(read_midi((tmp_path / "primed" / "000.mid").read_bytes()), STEPS_PER_QUARTER, grid=GRID)[0]
        )
        start = sounding(piece_to_roll(read_midi(primer.read_bytes()), STEPS_PER_QUARTER, grid=GRID)[0])
        assert primed.shape[1] == primer_steps + 8 and (primed[:, :primer_steps] == start[:, :primer_steps]).all()
        generated = primed[:, primer_steps:]  # the primer starts the piece; the caps hold in the new steps
        assert 1 <= generated.sum(axis=0).min() and generated.sum(axis=0).max() <= 3
    result = runner.invoke(app, ["generate", "--model", str(tmp_path / "model.keras"), "--primer", str(short),
                                 "--windows", "none.npz", "--out", str(tmp_path / "primed")])  # fmt: skip
    assert result.exit_code == 1 and "temperature auto is chosen on the validation pieces" in result.output
    (tmp_path / "bad.mid").write_bytes(b"nope")
    result = runner.invoke(
        app,
        ["generate", "--model", str(tmp_path / "model.keras"), "--primer", str(tmp_path / "bad.mid"), "--temperature",
         "1"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "bad.mid: not a MIDI file" in result.output


def test_generate_from_the_validation_pieces_is_the_generate_stage_s_music(tmp_path):
    """`--primer val` draws from --windows' val.npz as the generate stage does: for one seed the command, the
    stage and generate_pieces give the same MIDI files, byte for byte."""
    keras.utils.set_random_seed(0)
    build_article(context=9).save(tmp_path / "model.keras")
    windows = tmp_path / "windows"
    write_archive(windows / "test.npz", sequences(random_pieces(2, 40, seed=1)))
    write_archive(windows / "val.npz", sequences(random_pieces(3, 40, seed=2)))
    write_archive(windows / "train.npz", sequences(random_pieces(2, 40, seed=3)))
    outputs = {}
    for primer in ("val", "test"):
        outputs[primer] = tmp_path / f"cli-{primer}"
        result = runner.invoke(
            app,
            ["generate", "--model", str(tmp_path / "model.keras"), "--windows", str(windows), "--primer", primer,
             "--num", "2", "--steps", "12", "--primer-steps", "8", "--sampling", "threshold", "--seed", "3",
             "--out", str(outputs[primer])],
        )  # fmt: skip
        assert result.exit_code == 0, result.output

    params = validate("generate", {"pieces": 2, "steps": 12, "primer": "val", "primer_steps": 8,
                                   "sampling": "threshold", "seed": 3})  # fmt: skip
    generate.run(params, tmp_path / "model.keras", windows, tmp_path / "stage", tmp_path / "generate.json")
    model = frame_model.load(tmp_path / "model.keras")
    pieces = generate.generate_pieces(model, params, load_sequences("val", windows), progress=False)
    for number, piece in enumerate(pieces):
        written = (outputs["val"] / f"{number:03d}.mid").read_bytes()
        assert written == (tmp_path / "stage" / f"{number:03d}.mid").read_bytes()
        assert written == piece.midi(model.steps_per_quarter, params.tempo, params.include_primer)
    # Threshold sampling: the music follows the primer (an untrained model's random draws barely do), so
    # this tells the validation pieces' music from the test pieces'.
    assert (outputs["test"] / "000.mid").read_bytes() != (outputs["val"] / "000.mid").read_bytes()


def test_generate_chooses_an_auto_temperature_on_val_and_can_leave_the_primer_out(tmp_path):
    keras.utils.set_random_seed(0)
    build_article(context=9).save(tmp_path / "model.keras")
    windows = tmp_path / "windows"
    write_archive(windows / "val.npz", sequences(random_pieces(3, 40, seed=2)))
    command = ["generate", "--model", str(tmp_path / "model.keras"), "--windows", str(windows), "--primer", "val",
               "--num", "1", "--steps", "8", "--primer-steps", "8", "--min-notes", "1",
               "--out", str(tmp_path / "out")]  # fmt: skip
    result = runner.invoke(app, [*command, "--no-primer-in-output"])
    assert result.exit_code == 0, result.output
    assert "chosen on the validation pieces" in result.output
    written, _ = piece_to_roll(read_midi((tmp_path / "out" / "000.mid").read_bytes()), STEPS_PER_QUARTER, grid=GRID)
    assert written.shape[1] == 8  # the generated steps alone (min-notes 1: the last one sounds)
    assert Image.open(tmp_path / "out" / "000.png").size[0] == pictures.LABEL_MARGIN + 8 * 4
    result = runner.invoke(app, [*command, "--temperature", "hot"])
    assert result.exit_code == 2 and "auto or a number, not 'hot'" in result.output


def test_check_lists_every_file_and_fails_when_some_are_rejected(tmp_path, chorale_midi_dir):
    good = sorted(chorale_midi_dir.iterdir())[:2]
    for path in good:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    result = runner.invoke(app, ["check", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("accepted ") == 2
    assert "2 files: 2 accepted, 0 rejected, 0 duplicate" in result.output

    (tmp_path / "broken.mid").write_bytes(good[0].read_bytes()[:100])
    result = runner.invoke(app, ["check", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 1
    assert "rejected  broken.mid: truncated track" in result.output
    assert "3 files: 2 accepted, 1 rejected, 0 duplicate" in result.output


def test_check_gives_each_files_lost_share_and_flags_files_that_lose_notes(tmp_path, chorale_midi_dir):
    chorale = sorted(chorale_midi_dir.iterdir())[0]
    (tmp_path / chorale.name).write_bytes(chorale.read_bytes())
    (tmp_path / "ornaments.mid").write_bytes(
        to_midi(beyond_16ths(), 480)
    )  # re-strikes within a 16th (a tremolo of 32nds)
    short = [
        "0, Note_on_c, 0, 60, 90",
        "96, Note_off_c, 0, 60, 0",
        "240, Note_on_c, 0, 62, 90",
        "336, Note_off_c, 0, 62, 0",
    ]
    (tmp_path / "two staccato notes.mid").write_bytes(build_midi([short]))  # 0.2 quarters each
    result = runner.invoke(app, ["check", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 0, result.output
    line = {name: next(line for line in result.output.splitlines() if f"accepted  {name}:" in line) for name in
            (chorale.name, "ornaments.mid", "two staccato notes.mid")}  # fmt: skip
    assert ", 0.0% of " in line[chorale.name] and "% merged in the file" in line[chorale.name]
    assert line["two staccato notes.mid"].endswith(
        "two staccato notes.mid: 2 of 2 notes drawn, 0.0% of 2 in range lost, 0.0% merged in the file, 3 steps"
    )
    assert line["ornaments.mid"].endswith("<-- LOSES NOTES") and "lost (merged_by_grid 12)" in line["ornaments.mid"]
    assert "1 of 3 accepted files (LOSES NOTES) lose over 1% of their in-range notes on the nearest" in result.output

    result = runner.invoke(app, ["check", str(tmp_path), "--workers", "1", "--steps-per-quarter", "12"])
    assert result.exit_code == 0 and "LOSES NOTES" not in result.output
    result = runner.invoke(app, ["check", str(tmp_path), "--workers", "1", "--grid", "floor"])
    assert result.exit_code == 1  # the article's grid draws neither staccato note
    assert "rejected  two staccato notes.mid: no notes to draw (shorter than one step: 2)" in result.output
    assert "1 of 2 accepted files (LOSES NOTES)" in result.output and "--grid nearest keeps them" in result.output
    result = runner.invoke(app, ["check", str(tmp_path), "--grid", "round"])
    shown = " ".join(result.output.replace("│", " ").split())  # as one line, without Rich's box
    assert result.exit_code == 2 and "images.grid must be 'nearest', 'sample' or 'floor', not 'round'" in shown


def test_roll_draws_on_every_grid(tmp_path):
    short = tmp_path / "short.mid"
    short.write_bytes(build_midi([["0, Note_on_c, 0, 60, 90", "96, Note_off_c, 0, 60, 0"]]))
    result = runner.invoke(app, ["roll", str(short), "-o", str(tmp_path / "nearest.png")])
    assert result.exit_code == 0 and "1 steps, 1 sounding cells" in result.output
    result = runner.invoke(app, ["roll", str(short), "-o", str(tmp_path / "floor.png"), "--grid", "floor"])
    assert (
        result.exit_code == 0 and "0 steps, 0 sounding cells, not drawn: {'shorter than one step': 1}" in result.output
    )
    result = runner.invoke(app, ["roll", str(short), "-o", str(tmp_path / "sample.png"), "--grid", "sample"])
    assert result.exit_code == 0 and "1 steps, 1 sounding cells" in result.output  # it sounds at step 0's start
    late = tmp_path / "late.mid"
    late.write_bytes(build_midi([["24, Note_on_c, 0, 60, 90", "96, Note_off_c, 0, 60, 0"]]))
    result = runner.invoke(app, ["roll", str(late), "-o", str(tmp_path / "late.png"), "--grid", "sample"])
    assert result.exit_code == 0 and 'not drawn: {"sounds at no step\'s start": 1}' in result.output
    restruck = tmp_path / "restruck.mid"  # two quarters, the second struck where the first is released
    restruck.write_bytes(build_midi([["0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0",
                                      "480, Note_on_c, 0, 60, 90", "960, Note_off_c, 0, 60, 0"]]))  # fmt: skip
    result = runner.invoke(app, ["roll", str(restruck), "-o", str(tmp_path / "restruck.png")])
    assert result.exit_code == 0 and ": 2 notes struck, 8 steps, 8 sounding cells" in result.output


def test_check_and_roll_grid_defaults_are_params_yaml_defaults():
    import inspect

    from rollgen.cli import check, roll
    from rollgen.params import load_params

    images = load_params("images")
    for command in (check, roll):
        defaults = {name: value.default.default for name, value in inspect.signature(command).parameters.items()}
        assert (defaults["grid"], defaults["steps_per_quarter"]) == (images.grid, images.steps_per_quarter)


def test_generate_defaults_are_params_yaml_defaults():
    """The command line promises params.yaml's `generate:` defaults; a default changed in one place only fails."""
    import inspect

    from rollgen.cli import generate
    from rollgen.params import load_params

    params = load_params("generate").model_dump()
    defaults = {name: value.default.default for name, value in inspect.signature(generate).parameters.items()}
    shared = {"sampling", "temperature", "threshold", "max_notes", "min_notes", "primer", "primer_steps", "seed",
              "tempo", "soundfont"}  # fmt: skip
    assert {name: defaults[name] for name in shared} == {name: params[name] for name in shared}
    assert (defaults["num"], defaults["steps"]) == (params["pieces"], params["steps"])


def one_message(result) -> str:
    """The output of a command that failed with one message: as one line, without Rich's box."""
    return " ".join(result.output.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def test_a_folder_where_a_file_is_written_is_a_message_not_a_traceback(tmp_path):
    midi = tmp_path / "a.mid"
    midi.write_bytes(build_midi([["0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0"]]))
    (tmp_path / "out").mkdir()
    for command in (["roll", str(midi), "-o", str(tmp_path / "out")], ["render", str(midi), str(tmp_path / "out")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2  # a usage error, said by the option it is about
        assert "out' is a directory" in one_message(result) and "Traceback" not in result.output


def test_render_refuses_a_file_that_is_no_soundfont_in_one_line(tmp_path):
    midi = tmp_path / "a.mid"
    midi.write_bytes(build_midi([["0, Note_on_c, 0, 60, 90", "480, Note_off_c, 0, 60, 0"]]))
    font = tmp_path / "font.sf2"
    font.write_text("garbage")
    result = runner.invoke(app, ["render", str(midi), str(tmp_path / "a.wav"), "--soundfont", str(font)])
    assert result.exit_code == 1 and not (tmp_path / "a.wav").exists()
    assert result.output == f"SoundFont '{font}' is not a SoundFont 2 (.sf2) file: it has no RIFF 'sfbk' header\n"


def test_check_writes_one_line_per_file_whatever_its_name(tmp_path, chorale_midi_dir):
    chorale = sorted(chorale_midi_dir.iterdir())[0].read_bytes()
    (tmp_path / "two\nlines.mid").write_bytes(chorale)
    (tmp_path / "tab\there.mid").write_bytes(chorale[:100])  # truncated: rejected
    result = runner.invoke(app, ["check", str(tmp_path), "--workers", "1"])
    lines = result.stdout.splitlines()  # stderr has the progress bar
    assert len(lines) == 3 and lines[-1] == "2 files: 1 accepted, 1 rejected, 0 duplicate", lines
    assert lines[0].startswith("rejected  tab\\there.mid: truncated track")
    assert lines[1].startswith("accepted  two\\nlines.mid: ")


def test_generate_says_a_file_is_no_model_in_one_line(tmp_path):
    import zipfile

    (tmp_path / "notes.txt").write_text("not a model")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("readme.txt", "a zip, but no Keras model in it")
    for name in ("notes.txt", "other.keras"):
        result = runner.invoke(app, ["generate", "--model", str(tmp_path / name), "--primer", "none"])
        assert result.exit_code == 1 and len(result.output.splitlines()) == 1, result.output
        assert result.output.startswith(f"{tmp_path / name}: not a .keras model rollgen can load (")
        assert "File not found" not in result.output
