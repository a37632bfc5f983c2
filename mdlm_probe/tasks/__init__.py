"""Layer 3: what is decoded and how it is scored or edited.

`benchmarks/` (prompts + scorers, one module per benchmark; `benchmarks.sandbox` runs the code benchmarks'
tests), `synthetic` (the synthetic arithmetic task), `scoring` (answer extraction and matching),
`interventions` (shift hooks), `objectives` (training losses), `judge` (an LLM judge), `presets` (published
settings, one JSON file each beside the module).
"""
