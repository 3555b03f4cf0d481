"""SIGINT (Ctrl-C) for train.py, eval.py and scripts/infer.py, received by a watcher thread
instead of a signal handler.

MindSpore installs its own SIGINT handler while it runs a graph and turns SIGINT into SIGTERM
(the process then dies with status 143 and no message, leaving whatever it was writing). The
entry scripts therefore block SIGINT in every thread, before any thread exists
(:func:`start_sigint_watcher` is their first call, before numpy or MindSpore start theirs), and
one thread takes it with ``sigwait``: no handler of MindSpore ever sees it.

A SIGINT goes to the listener registered at that moment:

* the training loop's (:class:`src.train.interrupts.StopRequests`: finish the step,
  checkpoint, exit 130);
* :func:`until_interrupted` around the image / frame loops of eval.py and scripts/infer.py: the
  request is recorded and the loop raises :class:`Interrupted` before its next item, so the
  work in progress unwinds normally (an atomic write in progress is removed, a partial video
  is not left, no results file is written) and the script prints one line and exits 130;
* none (start-up, loading, writing): the process ends at once with status 130 and the script's
  one line (nothing is half-written then: every file is written atomically).

A second SIGINT always ends the process at once. Only the standard library (and the error
base) is imported here.
"""
import os
import signal
import sys
import threading

from src.errors import OpenPoseError

TRAINING_LINE = ("stopped by SIGINT outside the training steps; the last checkpoint written (if "
                 "any) is complete; continue with --resume auto")
_STATE = {"thread": None, "listener": None, "prog": "train.py", "line": TRAINING_LINE}


class Interrupted(OpenPoseError):
    """The run stopped on a signal between two items of its work.

    Attributes:
        signum: the signal; exit_code: ``128 + signum`` (130 for SIGINT).
    """

    def __init__(self, message, signum=signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


def start_sigint_watcher(prog="train.py", line=TRAINING_LINE):
    """Block SIGINT in this (the main) thread and the threads it will start; take it in a
    daemon thread. Call before any other thread exists. Returns False where unsupported.

    Args:
        prog: the script's name, starting its line.
        line: what the script says when a SIGINT ends it outside :func:`until_interrupted`
            (and in :class:`Interrupted`'s message): ``<prog>: <line>``.
    """
    if _STATE["thread"] is not None:
        return True
    if not hasattr(signal, "pthread_sigmask") or threading.active_count() > 1:
        return False
    _STATE["prog"], _STATE["line"] = prog, line
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    thread = threading.Thread(target=_watch, name="sigint-watcher", daemon=True)
    _STATE["thread"] = thread
    thread.start()
    return True


def watcher_running():
    """True when SIGINT is taken by the watcher thread (an entry script started it)."""
    return _STATE["thread"] is not None


def set_listener(listener):
    """Route SIGINT to ``listener(signum)`` (None: exit at once); returns the previous one."""
    previous, _STATE["listener"] = _STATE["listener"], listener
    return previous


def stopped_line():
    """``<prog>: <line>`` of the script that started the watcher."""
    return f"{_STATE['prog']}: {_STATE['line']}"


def until_interrupted(items):
    """Yield ``items``; a SIGINT meanwhile raises :class:`Interrupted` before the next one.

    Without the watcher (library use, tests) this is ``items`` unchanged. The current item
    finishes first (one image or frame: a network run cannot be cut in the middle anyway).
    """
    if not watcher_running():
        yield from items
        return
    requests = []

    def record(signum):
        if requests:
            return False            # the second one: exit at once
        requests.append(signum)
        return True

    previous = set_listener(record)
    try:
        for item in items:
            if requests:
                raise Interrupted(_STATE["line"], requests[0])
            yield item
        if requests:
            raise Interrupted(_STATE["line"], requests[0])
    finally:
        set_listener(previous)


def _watch():
    while True:
        signum = signal.sigwait({signal.SIGINT})
        listener = _STATE["listener"]
        if listener is None or listener(signum) is False:
            _exit_now(signum)


def _exit_now(signum):
    """One line, then exit 128 + signum without cleanup (outside the loops nothing is
    half-written: files are written atomically)."""
    sys.stderr.write(stopped_line() + "\n")
    sys.stderr.flush()
    os._exit(128 + signum)
