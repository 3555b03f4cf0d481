"""SIGINT / SIGTERM during training: finish the step, write a checkpoint, say how to resume.

:class:`StopRequests` replaces the handlers of SIGINT and SIGTERM while the training loop runs:
the first signal only records a request, which the loop reads after each step
(:attr:`StopRequests.signum`); it then writes a checkpoint and raises :class:`TrainInterrupted`,
whose exit status is the shell's ``128 + signal`` (130 for SIGINT, 143 for SIGTERM). A second
signal of the same kind stops at once, as the default handler would.

In train.py SIGINT is taken by the watcher thread of :mod:`src.runtime.stop_signals` (MindSpore turns
a SIGINT that arrives during a graph run into SIGTERM); without it (tests calling
:func:`src.train.loop.run_training`) a Python handler takes SIGINT too.
"""
import signal
import threading

from src.runtime import stop_signals
from src.train.errors import TrainError

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainInterrupted(TrainError):
    """Training stopped on a signal after writing a checkpoint.

    Attributes:
        signum: the signal; exit_code: ``128 + signum``.
    """

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class StopRequests:
    """Context manager recording SIGINT / SIGTERM instead of dying in the middle of a step.

    Args:
        enabled: install the handlers (False, or not the main thread: nothing changes).
    """

    def __init__(self, enabled=True):
        self.enabled = bool(enabled) and threading.current_thread() is threading.main_thread()
        self.signum = None
        self._previous = {}
        self._listener = None

    @property
    def requested(self):
        """True once a stop signal arrived."""
        return self.signum is not None

    def name(self):
        """``SIGINT`` / ``SIGTERM`` of the request ('' when none)."""
        return signal.Signals(self.signum).name if self.requested else ""

    def _on_watched(self, signum):
        """SIGINT from the watcher thread; False (exit at once) for the second one."""
        if self.signum == signum:
            return False
        self.signum = signum
        return True

    def _handle(self, signum, _frame):
        if self.signum == signum:           # the second one: stop now, as by default
            self._restore()
            signal.raise_signal(signum)
            return
        self.signum = signum

    def rearm(self):
        """Install the handlers again (the loop calls this after each step). MindSpore sets its
        own SIGINT handler while it runs a graph and restores the one it found; this keeps
        ours in place whatever a library did meanwhile."""
        for signum in self._previous:
            signal.signal(signum, self._handle)

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self):
        if self.enabled:
            handled = HANDLED_SIGNALS
            if stop_signals.watcher_running():
                self._listener = stop_signals.set_listener(self._on_watched)
                handled = (signal.SIGTERM,)
            for signum in handled:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info):
        self._restore()
        if self.enabled and stop_signals.watcher_running():
            stop_signals.set_listener(self._listener)
        return False


def interrupted_error(stop, global_step, checkpoint):
    """The :class:`TrainInterrupted` of a stop after ``global_step`` with ``checkpoint`` written."""
    saved = f"checkpoint {checkpoint} written" if checkpoint else "no checkpoint written"
    return TrainInterrupted(f"stopped by {stop.name()} after global step {global_step}; {saved}; "
                            "continue with the same command and --resume auto", stop.signum)
