"""mdlm-probe: evaluate and diagnose masked diffusion language models."""

__version__ = "0.1.0"

from .adapters import MaskedDiffusionModel, load_model  # noqa: E402
from .sampler import SamplerConfig, StepState, diffuse, generate  # noqa: E402

__all__ = ["MaskedDiffusionModel", "load_model", "SamplerConfig", "StepState", "diffuse", "generate"]
