"""One module per larger CLI command; each defines `register(app)` (picked up by cli.py)."""
