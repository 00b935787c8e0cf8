"""Every DVC stage lists, in `deps`, exactly the Python files its script runs: the script, and the closure of
rollgen modules it imports (at module level or inside functions, directly or through other modules), found by
reading the sources with `ast` (nothing is imported, so no TensorFlow). Add an import, and this test names the
stage and the file to add to dvc.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rollgen.sources import script_closure

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def script_of(stage: dict) -> Path:
    """The `stages/NAME.py` that the stage's `python stages/NAME.py` command runs."""
    words = stage["cmd"].split()
    assert words[0] == "python" and len(words) == 2 and words[1].endswith(".py"), stage["cmd"]
    return REPO / words[1]


def is_code(dep: str) -> bool:
    return dep.startswith(("src/", "stages/"))


def test_the_closure_follows_every_kind_of_import(tmp_path):
    files = {
        "stages/step.py": "import json\nfrom rollgen import a\n",
        "src/rollgen/__init__.py": "",
        "src/rollgen/a.py": "from rollgen.b import CONSTANT\n\ndef later():\n    import rollgen.sub.c\n",
        "src/rollgen/b.py": "CONSTANT = 1\n",  # CONSTANT is no module: only b.py is run
        "src/rollgen/sub/__init__.py": "from . import d\n",
        "src/rollgen/sub/c.py": "from .. import e\n",
        "src/rollgen/sub/d.py": "",
        "src/rollgen/e.py": "",
        "src/rollgen/unused.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert script_closure(tmp_path / "stages/step.py", root=tmp_path) == {
        "stages/step.py",
        "src/rollgen/__init__.py",
        "src/rollgen/a.py",
        "src/rollgen/b.py",
        "src/rollgen/sub/__init__.py",
        "src/rollgen/sub/c.py",
        "src/rollgen/sub/d.py",
        "src/rollgen/e.py",
    }


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_list_exactly_the_code_it_runs(name):
    stage = STAGES[name]
    listed = {dep for dep in stage.get("deps", []) if is_code(dep)}
    expected = script_closure(script_of(stage), REPO)
    missing, extra = sorted(expected - listed), sorted(listed - expected)
    assert not missing and not extra, f"dvc.yaml, stage {name}: add to deps {missing}, remove from deps {extra}"


GENERATION_ONLY = (
    "src/rollgen/generation/",
    "src/rollgen/music/audio.py",
    "src/rollgen/music/pictures.py",
    "src/rollgen/evaluation/quality.py",
    "src/rollgen/evaluation/stats.py",
    "src/rollgen/cli.py",
)


def test_training_runs_no_generation_code():
    """Editing the gallery, the CLI or audio reruns generation, never training: the register stage, after train,
    logs the generator (the generate stage, the sampled pieces)."""
    deps = STAGES["train"]["deps"]
    assert "src/rollgen/training/train.py" in deps
    assert not [dep for dep in deps if dep.startswith(GENERATION_ONLY)]
    assert [dep for dep in STAGES["register"]["deps"] if dep.startswith(GENERATION_ONLY)]  # it is there instead
