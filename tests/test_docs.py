"""The documentation stays a guide a reader can follow: a short README that links every page of docs/, and no
relative link (or #anchor) that leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
LINKED_PAGES = [README, ROOT / "CHANGELOG.md", *DOC_PAGES]
README_MAX_LINES = 200  # issue #25: a user's guide, as long as the READMEs people read (nanoGPT's 234)

FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """`text` without fenced code blocks and inline code, where brackets and parentheses are not links."""
    return INLINE_CODE.sub("", FENCED_BLOCK.sub("", text))


def links(page: Path) -> list[str]:
    """Every link target written in `page`'s prose, images included, as written."""
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


def is_relative(target: str) -> bool:
    """Whether `target` names a place in this repository (not a URL, not a mail address)."""
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)


def anchor(heading: str) -> str:
    """The #fragment GitHub gives a heading: lower case, markup and punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The #fragments of every heading in `page` (outside code blocks)."""
    text = FENCED_BLOCK.sub("", page.read_text(encoding="utf-8"))
    return {anchor(heading) for heading in HEADING.findall(text)}


def test_anchor_follows_githubs_rule() -> None:
    assert anchor("The default pipeline (2026-12-06)") == "the-default-pipeline-2026-12-06"
    assert anchor("`dvc exp show`, the columns") == "dvc-exp-show-the-columns"
    assert anchor("`val_nll` *per* [epoch](x.md)") == "val_nll-per-epoch"


def test_the_readme_is_a_short_guide() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move reference material to docs/"
    )


def test_the_readme_links_every_docs_page() -> None:
    assert DOC_PAGES, "docs/ has no pages"
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(README) if is_relative(target)}
    unlinked = [page.relative_to(ROOT).as_posix() for page in DOC_PAGES if page.resolve() not in linked]
    assert not unlinked, f"README.md links no page {unlinked}: add them to its links"


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in filter(is_relative, links(page)):
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target} (no heading #{fragment} in {destination.relative_to(ROOT).as_posix()})")
    assert not broken, f"{page.relative_to(ROOT).as_posix()}: broken links: {broken}"
