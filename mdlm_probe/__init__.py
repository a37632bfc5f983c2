"""mdlm-probe: evaluate and diagnose masked diffusion language models.

The package is a stack of layers, one subpackage each (docs/architecture.md): `core` (conventions and
helpers), `adapters` (model families), the decoder (`sampler` and its modules), `tasks` (benchmarks,
shift edits, objectives), `runs` (one function per run), `report` and `cli`. The library's entry points
are re-exported here.
"""

__version__ = "0.1.0"

__all__ = ["MaskedDiffusionModel", "load_model", "SamplerConfig", "StepState", "diffuse", "generate"]
_HOME = {"MaskedDiffusionModel": "adapters", "load_model": "adapters", "SamplerConfig": "decoding",
         "StepState": "decoding", "diffuse": "decoding", "generate": "decoding"}


def __getattr__(name: str):
    """The entry points, imported on first use (PEP 562): the console script imports this package before it
    can catch a Ctrl-C, and these pull in torch and transformers (seconds)."""
    if name in _HOME:
        from importlib import import_module

        return getattr(import_module(f"mdlm_probe.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
