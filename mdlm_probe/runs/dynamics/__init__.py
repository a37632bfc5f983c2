"""Decoding dynamics from the trajectories records keep (issue 32): commit order, EOS, numbers, wrong-token
confidence, artifact origins, predictors of a wrong answer, cache drift. docs/dynamics.md."""

from .run import DYNAMICS, DYNAMICS_SUMMARY, RunDynamics, analyse_run, analyse_runs, format_tables

__all__ = ["DYNAMICS", "DYNAMICS_SUMMARY", "RunDynamics", "analyse_run", "analyse_runs", "format_tables"]
