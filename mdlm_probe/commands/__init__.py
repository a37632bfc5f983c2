"""One module per larger CLI command; each defines `register(app)` (picked up by cli.py).

The command modules use cli.py's shared options and consoles, and cli.py imports every command module to
register it. Importing cli here first makes the order the same whichever module a caller imports first
(`import mdlm_probe.commands.errors` alone would otherwise meet a half-initialised command module).
"""

from .. import cli  # noqa: F401
