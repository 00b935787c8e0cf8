"""rollgen's exception: library code raises it and goes on being usable from a notebook; the stages and the
`rollgen` command turn it into a one-line message and exit status 1 (`report_errors`)."""

from __future__ import annotations

import sys
from collections.abc import Callable


class RollgenError(Exception):
    """Something the user can fix (params, an input file, a missing split): the message names it and says how."""


def report_errors(main: Callable[[], object], name: str) -> None:
    """Runs a stage's `main`; a RollgenError ends the process with `name: message` on stderr and status 1."""
    try:
        main()
    except RollgenError as error:
        print(f"{name}: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
