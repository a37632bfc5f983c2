"""Remote code written for transformers 4, loaded under transformers 5: every version shim in one place.

LLaDA's published modeling_llada.py (and other remote code of its time) was written for transformers 4. Under
transformers 5 it breaks in three known ways; each fix below applies only when its trait is there, so a file
that already does the modern thing, or transformers 4 itself, sees no change. Nothing is written to the
checkpoint folder: the fixes live in a subclass made in memory at load (`hf.HFModel._load_module` applies them).
 1. The model class never calls `post_init()`; transformers 5 reads `all_tied_weights_keys`, which only
    `post_init()` sets -> call it at the end of `__init__` when that attribute is missing (`compat_class`).
 2. `tie_weights(self)` takes no arguments; transformers 5 calls `tie_weights(missing_keys=...,
    recompute_mapping=...)` -> accept and drop them, and run the file's own tying (LLaDA: the output layer
    is the input embedding when `weight_tying` is set) (`compat_class`).
 3. The config takes `use_cache` as an argument, transformers 5 drops it, and `forward` reads
    `self.config.use_cache` -> put back the value config.json has (False when it has none: masked diffusion
    models have no KV cache for their full-canvas forward) (`restore_use_cache`).
Dream's file (copied from transformers 4's Qwen2) has two more:
 4. Its rotary embedding looks up `ROPE_INIT_FUNCTIONS["default"]`, which transformers 5 removed -> the
    standard frequencies are offered under that name while the model is built (`legacy_rope`).
 5. transformers 5 builds the model on the meta device and leaves non-persistent buffers (the rotary
    `inv_freq`) as uninitialised memory unless the model's `_init_weights` refills them, which a
    transformers 4 file does not: positions would be silently wrong -> after loading, every parameter-free
    module that owns non-persistent buffers and has `reset_parameters()` recomputes them (`refill_buffers`).
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Any

import torch


def compat_class(cls: type) -> type:
    """`cls` (a remote-code PreTrainedModel) with fixes 1 and 2 above where it needs them."""
    from transformers import PreTrainedModel

    body: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    if hasattr(PreTrainedModel, "get_expanded_tied_weights_keys"):  # a transformers that needs post_init's keys
        def __init__(self, config, *args, **kwargs):
            cls.__init__(self, config, *args, **kwargs)
            if not hasattr(self, "all_tied_weights_keys"):
                self.post_init()

        body["__init__"] = __init__
    params = inspect.signature(cls.tie_weights).parameters
    takes_new_args = "recompute_mapping" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    if not takes_new_args:
        def tie_weights(self, missing_keys=None, recompute_mapping=True, **kwargs):
            return cls.tie_weights(self)

        body["tie_weights"] = tie_weights
    return type(cls.__name__, (cls,), body)


def _default_rope(config, device=None, **kwargs) -> tuple[torch.Tensor, float]:
    """Fix 4: transformers 4's "default" rotary frequencies, 1 / theta^(2i / d), and attention factor 1."""
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    dim = int(dim * getattr(config, "partial_rotary_factor", 1.0))
    theta = getattr(config, "rope_theta", None) or (getattr(config, "rope_parameters", None) or {}).get("rope_theta")
    inv_freq = 1.0 / (float(theta or 10000.0) ** (torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim))
    return inv_freq, 1.0


@contextmanager
def legacy_rope():
    """Fix 4, only while a model is built: "default" in ROPE_INIT_FUNCTIONS where this transformers lacks it."""
    try:
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    except ImportError:  # a transformers without the registry: nothing to look up
        yield
        return
    added = "default" not in ROPE_INIT_FUNCTIONS
    if added:
        ROPE_INIT_FUNCTIONS["default"] = _default_rope
    try:
        yield
    finally:
        if added:
            ROPE_INIT_FUNCTIONS.pop("default", None)


def refill_buffers(module: torch.nn.Module) -> None:
    """Fix 5: recompute non-persistent buffers of parameter-free modules that know how (`reset_parameters`)."""
    for sub in module.modules():
        own = getattr(sub, "_non_persistent_buffers_set", ())
        resettable = callable(getattr(sub, "reset_parameters", None))
        if own and resettable and not any(True for _ in sub.parameters(recurse=False)):
            with torch.no_grad():
                sub.reset_parameters()


def restore_use_cache(module: torch.nn.Module, config: dict) -> None:
    """Fix 3: the config.json value of `use_cache`, where the loaded config lost it."""
    cfg = getattr(module, "config", None)
    if cfg is not None and not hasattr(cfg, "use_cache"):
        cfg.use_cache = bool(config.get("use_cache", False))
