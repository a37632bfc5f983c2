"""Compatibility: `from mdlm_probe.interventions import Shift` (documented) keeps working; the code is in tasks.interventions."""
from mdlm_probe.tasks.interventions import EDITS, MODES, Shift, candidates, edit_map, num_points, seeded_points  # noqa: F401
