"""Unreadable inputs and unwritable drawings of eval.py and scripts/infer.py.

An image that cannot be read is reported on one line, counted and skipped, so the results of
the other images are still written (``--strict True`` stops at the first one instead). A
drawing that cannot be written is reported on one line and counted; the run still writes its
results and then fails (:meth:`InputSkips.raise_for_failed_writes`).
"""
from src.runtime.atomic_write import WriteError, write_image
from src.runtime.output_checks import OutputError

#: The reason an input is skipped unless its error class names another (``skip_reason``).
UNREADABLE = "unreadable"


class InputSkips:
    """Counts skipped inputs and failed drawing writes of one run.

    Args:
        strict: re-raise the first unreadable input instead of skipping it.
        log: function taking one line (e.g. ``tqdm.write`` or ``print``).
    """

    def __init__(self, strict=False, log=print):
        self.strict = bool(strict)
        self.log = log
        self.skipped = []
        self.reasons = {}
        self.failed_writes = []

    def skip(self, exc):
        """Record the input of ``exc`` (its message names the file) as skipped, counted under
        its class's ``skip_reason`` (default ``unreadable``); strict: raise it."""
        if self.strict:
            raise exc
        self.skipped.append(str(exc))
        reason = getattr(exc, "skip_reason", UNREADABLE)
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.log(f"warning: skipped: {exc}")

    def draw(self, path, image):
        """Write a drawing; a failure is logged as an error line and counted, not raised."""
        try:
            write_image(path, image)
        except WriteError as exc:
            self.failed_writes.append(str(exc))
            self.log(f"error: {exc}")

    def summary(self):
        """``", 2 skipped (unreadable)"`` style suffix for a summary line ("" when none)."""
        return f", {len(self.skipped)} skipped ({describe_reasons(self.reasons)})" \
            if self.skipped else ""

    def raise_for_failed_writes(self):
        """Raise :class:`OutputError` when any drawing could not be written (after the results)."""
        raise_for_failed_writes(self.failed_writes)


def describe_reasons(reasons):
    """``"1 unreadable, 2 not of the annotated size"`` from ``{reason: count}`` (sorted); a
    single reason alone is just its name (``"unreadable"``)."""
    if len(reasons) == 1:
        return next(iter(reasons))
    return ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))


def merge_reasons(parts):
    """One ``{reason: count}`` from several (e.g. every rank's)."""
    total = {}
    for part in parts:
        for reason, count in part.items():
            total[reason] = total.get(reason, 0) + count
    return total


def raise_for_failed_writes(failed_writes):
    """Raise :class:`OutputError` naming the first of ``failed_writes`` (messages), if any."""
    if failed_writes:
        raise OutputError(f"{len(failed_writes)} drawing(s) could not be written; "
                          f"first: {failed_writes[0]}")
