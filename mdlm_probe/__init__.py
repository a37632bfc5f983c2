"""mdlm-probe: evaluate and diagnose masked diffusion language models.

The package is a stack of layers, one subpackage each (docs/architecture.md): `core` (conventions and
helpers), `adapters` (model families), the decoder (`sampler` and its modules), `tasks` (benchmarks,
shift edits, objectives), `runs` (one function per run), `report` and `cli`. The library's entry points
are re-exported here.
"""

__version__ = "0.1.0"

from mdlm_probe.adapters import MaskedDiffusionModel, load_model  # noqa: E402
from mdlm_probe.decoding import SamplerConfig, StepState, diffuse, generate  # noqa: E402

__all__ = ["MaskedDiffusionModel", "load_model", "SamplerConfig", "StepState", "diffuse", "generate"]
