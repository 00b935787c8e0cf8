"""What one input file may cost an ingest worker: processor time and memory.

The time limit counts the worker's processor seconds, not the clock's: on a loaded machine a file gets fewer
seconds of processor per minute, and a wall-clock limit would reject it there and accept it on a quiet one, so
the same folder and params would give different data. Processor time is what the file itself costs. The clock
still stops a worker that waits without computing (a file that is a pipe, a stalled network mount): a
backstop of `WALL_FACTOR` times the limit, far past anything a busy machine stretches processor time to.
"""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager

WALL_FACTOR = 10


class ProcessorTimeExceeded(BaseException):
    """Raised in a worker whose file used up its processor time. A BaseException, so that the `except
    Exception` that turns a parser's errors into reasons cannot take it for the file's own fault."""


def _raise_exceeded(signum: int, frame: object) -> None:
    raise ProcessorTimeExceeded


@contextmanager
def processor_time_limit(seconds: float) -> Iterator[None]:
    """Raises ProcessorTimeExceeded in the block once this process has spent `seconds` of processor time
    in it (user and system, every thread: the profiling timer). Must run in the main thread, as a worker
    process's tasks do."""
    previous = signal.signal(signal.SIGPROF, _raise_exceeded)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def limit_memory(megabytes: int) -> None:
    """Worker start-up: cap the address space, so a file that makes a parser balloon fails alone."""
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
