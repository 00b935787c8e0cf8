"""The ingest workers' processor-time limit counts computing, not waiting: the same file gets the same verdict
on a loaded machine as on a quiet one."""

from __future__ import annotations

import signal
import time

import pytest

from rollgen.data.limits import ProcessorTimeExceeded, processor_time_limit


def spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_computing_past_the_limit_is_stopped():
    started = time.process_time()
    with pytest.raises(ProcessorTimeExceeded), processor_time_limit(0.2):
        spin(5)
    assert 0.15 < time.process_time() - started < 2


def test_waiting_does_not_count():
    with processor_time_limit(0.2):
        time.sleep(0.5)  # half a second of the clock, almost no processor time
        spin(0.05)


def test_a_parser_catching_every_exception_cannot_swallow_it():
    with pytest.raises(ProcessorTimeExceeded), processor_time_limit(0.1):
        try:
            spin(5)
        except Exception:  # what rollgen does around music21: the limit is no parser error
            pytest.fail("the limit was taken for the parser's own error")


def test_the_timer_and_handler_are_restored():
    before = signal.getsignal(signal.SIGPROF)
    with processor_time_limit(10):
        spin(0.01)
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGPROF) is before
