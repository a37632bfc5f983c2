"""The one error type that means "the user gave us something we cannot use".

The CLI turns a `BadInput` into a single line on stderr and exit code 2 (see docs/conventions.md);
anything else that escapes is an internal error (exit 1).
"""


class BadInput(Exception):
    """Bad checkpoint, data file, option or setting: reported as one line, exit code 2."""


def first_line(e: BaseException, with_type: bool = False) -> str:
    """`e`'s message cut to its first line, for a one-line BadInput; its type name when it has no message.
    `with_type` puts the type name in front ("OSError: ...") where the message alone would not say what failed."""
    s = str(e).strip()
    line = s.splitlines()[0] if s else ""
    if not line:
        return type(e).__name__
    return f"{type(e).__name__}: {line}" if with_type else line
