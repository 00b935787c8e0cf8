"""Every DVC stage lists, in `deps`, exactly the Python files its script runs: the script, and the closure of
rollgen modules it imports (at module level or inside functions, directly or through other modules), found by
reading the sources with `ast` (nothing is imported, so no TensorFlow). Add an import, and this test names the
stage and the file to add to dvc.yaml."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "rollgen"
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(name: str, sources: Path) -> Path | None:
    """The file under `sources` that `import name` runs, for a module of the package; None for anything else."""
    if name != PACKAGE and not name.startswith(f"{PACKAGE}."):
        return None
    base = sources.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def with_parents(name: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`, `a.b.c`]: importing a module runs its packages' `__init__` first."""
    parts = name.split(".")
    return [".".join(parts[: end + 1]) for end in range(len(parts))]


def imported_modules(path: Path, name: str | None, sources: Path) -> set[str]:
    """Names of the modules that `path` (module `name`, None for a script) imports anywhere in its code:
    `import rollgen.x`, `from rollgen import x`, `from rollgen.x import y` (y too, where it is a module) and
    relative imports."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package
                assert name is not None, f"{path}: a script cannot import relatively"
                package = name.split(".")[: len(name.split(".")) - node.level + is_package]
                origin = ".".join([*package, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            found.update(with_parents(origin))
            found.update(f"{origin}.{alias.name}" for alias in node.names)  # kept below only if a module
    return {module for module in found if module_file(module, sources) is not None}


def code_closure(script: Path, root: Path = REPO) -> set[str]:
    """Paths, relative to `root`, of `script` and of every package module it runs (from `root`/src), transitively."""
    sources = root / "src"
    closure = {script}
    pending: list[tuple[Path, str | None]] = [(script, None)]
    seen: set[str] = set()
    while pending:
        path, name = pending.pop()
        for module in imported_modules(path, name, sources) - seen:
            seen.add(module)
            file = module_file(module, sources)
            closure.add(file)
            pending.append((file, module))
    return {path.relative_to(root).as_posix() for path in closure}


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
    assert code_closure(tmp_path / "stages/step.py", root=tmp_path) == {
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
    expected = code_closure(script_of(stage))
    missing, extra = sorted(expected - listed), sorted(listed - expected)
    assert not missing and not extra, f"dvc.yaml, stage {name}: add to deps {missing}, remove from deps {extra}"
