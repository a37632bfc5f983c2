"""Layer 4: one function owns each run and the files it writes.

`evaluate.run_eval`, `shift.run_shift`, `miners.mine_run`, `compare.write_compare`, `train.train`,
`invariance.run_invariance`, `frontier.run_frontier`, and `lm_eval_model` (lm-evaluation-harness's model class);
`settings.resolve_settings` resolves every run's settings (command line > preset > sidecar > adapter > defaults).
"""
