"""The one base class of this project's errors.

Every error raised for bad input or a failed step derives from :class:`OpenPoseError` (and,
where callers may expect it, from the built-in class it refines: ValueError, OSError, ...). Its
message is one line that names the file or value and the problem; the entry scripts print it
and exit with status 1.
"""


class OpenPoseError(Exception):
    """A failure the user can act on: bad input, a missing file, a failed write or launch."""
