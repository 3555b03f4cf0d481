"""Pieces of the one-line error messages: an exception's first line, a shortened name list."""


def first_line(exc, limit=160):
    """The first line of ``str(exc)`` (the exception's type name when empty), cut to ``limit``
    characters (None: no cut)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if limit is None else line[:limit]


def name_list(names, shown=3, quote=False):
    """``"a, b, c and 4 more"``: the first ``shown`` names, then how many were left out."""
    names = [f"'{name}'" if quote else str(name) for name in names]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def shorten(value, limit=60):
    """A user's value for a one-line message: text in quotes, anything else as ``repr``
    (numpy arrays as lists), line breaks folded, cut to ``limit`` characters with ``...`` and
    the value's full length when longer."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    text = value if isinstance(value, str) else repr(value)
    if "\n" in text or "\r" in text:
        text = " ".join(text.split())
    quote = "'" if isinstance(value, str) else ""
    if len(text) <= limit:
        return f"{quote}{text}{quote}"
    return f"{quote}{text[:limit]}...{quote} ({len(text)} characters)"
