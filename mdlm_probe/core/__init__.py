"""Layer 0: the conventions (docs/conventions.md) and small helpers every layer may use.

Exceptions (`exceptions.BadInput`), sample records (`records`), run directories (`rundir`), run cards
(`cards`), checkpoint folders and sidecars (`checkpoints`), collapse maps (`collapse`), statistics (`stats`),
text metrics (`text_metrics`), progress bars (`progress`), worker processes (`workers`) and the generic
registry (`registry`). Nothing here imports another layer.
"""
