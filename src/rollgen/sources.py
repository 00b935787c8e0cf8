"""rollgen's own code read as text with `ast` (nothing is imported, so no TensorFlow): which modules a module
runs, and the packages outside rollgen they need. One walker serves the stages' DVC deps
(scripts/sync_stage_deps.py), a training checkpoint's code fingerprint and a logged model's requirements.

    module_closure("rollgen.training.train")   # {"rollgen": src/rollgen/__init__.py, ...}: what importing it runs
    script_closure(Path("stages/train.py"))    # {"stages/train.py", "src/rollgen/__init__.py", ...}
    outside_imports("rollgen.tracking.next_frame_model")  # {"numpy": "rollgen.music.roll", ...}
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "rollgen"
SOURCES = Path(__file__).resolve().parents[1]  # the folder holding the rollgen package (src/)


def module_file(name: str, sources: Path = SOURCES) -> Path | None:
    """The file under `sources` that `import name` runs, for a module of the package; None for anything else."""
    if name != PACKAGE and not name.startswith(f"{PACKAGE}."):
        return None
    base = sources.joinpath(*name.split("."))
    return next((path for path in (base / "__init__.py", base.with_suffix(".py")) if path.is_file()), None)


def with_parents(name: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`, `a.b.c`]: importing a module runs its packages' `__init__` first."""
    parts = name.split(".")
    return [".".join(parts[: end + 1]) for end in range(len(parts))]


def _statements(tree: ast.AST) -> list[ast.AST]:
    """Every statement that can run, at module level or inside functions, but not under `if TYPE_CHECKING:`."""
    found: list[ast.AST] = []
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING":
            found += [statement for branch in node.orelse for statement in [branch, *_statements(branch)]]
            continue
        found += [node, *_statements(node)]
    return found


def imports(path: Path, name: str | None) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import in the file at `path`, module `name` (None for a script),
    relative imports resolved against its package."""
    is_package = path.name == "__init__.py"
    found: list[tuple[str, list[str]]] = []
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:
                if name is None:
                    raise ValueError(f"{path}: a script cannot import relatively")
                parts = name.split(".")
                package = parts[: len(parts) - node.level + is_package]
                origin = ".".join([*package, *([node.module] if node.module else [])])
            found.append((origin, [alias.name for alias in node.names]))
    return found


def imported_modules(path: Path, name: str | None, sources: Path = SOURCES) -> set[str]:
    """The rollgen modules that the file at `path` imports, their packages included; `from rollgen.x import y`
    counts y where y is a module."""
    found: set[str] = set()
    for origin, names in imports(path, name):
        found.update(with_parents(origin))
        found.update(f"{origin}.{item}" for item in names)
    return {module for module in found if module_file(module, sources) is not None}


def closure(path: Path, name: str | None, sources: Path = SOURCES) -> dict[str, Path]:
    """{module name: file} of every rollgen module that running the file at `path` (module `name`) imports,
    directly or not."""
    found: dict[str, Path] = {}
    pending = [(path, name)]
    while pending:
        file, module = pending.pop()
        for imported in imported_modules(file, module, sources) - found.keys():
            found[imported] = module_file(imported, sources)
            pending.append((found[imported], imported))
    return found


def module_closure(entry: str, sources: Path = SOURCES) -> dict[str, Path]:
    """{module name: file} of `entry` and every rollgen module importing it runs."""
    found = {module: module_file(module, sources) for module in with_parents(entry)}
    for module, file in list(found.items()):
        found.update(closure(file, module, sources))
    return found


def script_closure(script: Path, root: Path) -> set[str]:
    """Paths relative to `root` of `script` and of every module it runs from `root`/src."""
    files = {script, *closure(script, None, root / "src").values()}
    return {path.relative_to(root).as_posix() for path in files}


def outside_imports(entry: str, sources: Path = SOURCES) -> dict[str, str]:
    """{top-level package: a rollgen module importing it} for every package outside rollgen and the standard
    library that `entry`'s closure imports: what an environment must install to run it."""
    outside: dict[str, str] = {}
    for module, file in sorted(module_closure(entry, sources).items()):
        for origin, _ in imports(file, module):
            top = origin.split(".")[0]
            if top and top not in (PACKAGE, "__future__") and top not in sys.stdlib_module_names:
                outside.setdefault(top, module)
    return outside
