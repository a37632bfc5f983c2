"""The one error type that means "the user gave us something we cannot use".

The CLI turns a `BadInput` into a single line on stderr and exit code 2 (see docs/conventions.md);
anything else that escapes is an internal error (exit 1).
"""


class BadInput(Exception):
    """Bad checkpoint, data file, option or setting: reported as one line, exit code 2."""
