"""SIGINT for train.py, received by a watcher thread instead of a signal handler.

MindSpore installs its own SIGINT handler while it runs a graph and turns SIGINT into SIGTERM
(the process then dies or, with a SIGTERM handler, looks terminated). train.py therefore blocks
SIGINT in every thread, before any thread exists (:func:`start_sigint_watcher` is its first
call, before numpy or MindSpore start theirs), and one thread takes it with ``sigwait``: no
handler of MindSpore ever sees it.

A SIGINT goes to the listener that the training loop registered
(:class:`src.train.interrupts.StopRequests`: finish the step, checkpoint, exit 130). Outside the
loop, or at a second SIGINT, the process ends at once with status 130 and one line. Only the
standard library is imported here.
"""
import os
import signal
import sys
import threading

_STATE = {"thread": None, "listener": None, "prog": "train.py"}


def start_sigint_watcher(prog="train.py"):
    """Block SIGINT in this (the main) thread and the threads it will start; take it in a
    daemon thread. Call before any other thread exists. Returns False where unsupported."""
    if _STATE["thread"] is not None:
        return True
    if not hasattr(signal, "pthread_sigmask") or threading.active_count() > 1:
        return False
    _STATE["prog"] = prog
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    thread = threading.Thread(target=_watch, name="sigint-watcher", daemon=True)
    _STATE["thread"] = thread
    thread.start()
    return True


def watcher_running():
    """True when SIGINT is taken by the watcher thread (train.py)."""
    return _STATE["thread"] is not None


def set_listener(listener):
    """Route SIGINT to ``listener(signum)`` (None: exit at once); returns the previous one."""
    previous, _STATE["listener"] = _STATE["listener"], listener
    return previous


def _watch():
    while True:
        signum = signal.sigwait({signal.SIGINT})
        listener = _STATE["listener"]
        if listener is None or listener(signum) is False:
            _exit_now(signum)


def _exit_now(signum):
    """One line, then exit 128 + signum without cleanup (outside the loop nothing is half-saved:
    checkpoints are written atomically)."""
    sys.stderr.write(f"{_STATE['prog']}: stopped by {signal.Signals(signum).name} outside the "
                     "training steps; the last checkpoint written (if any) is complete; continue "
                     "with --resume auto\n")
    sys.stderr.flush()
    os._exit(128 + signum)
