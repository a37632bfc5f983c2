"""The model interface every sampler, intervention and objective uses, the adapter registry and `load_model`.

An adapter turns a checkpoint into a `MaskedDiffusionModel`: token ids (B, L) and an optional
attention mask in, logits (B, L, V) out, with logits[:, i] predicting token i. Adding a model family is
one class decorated with `@register("name")` that implements `load` (and `forward` when the family's
call differs); Hugging Face families subclass `hf.HFModel`, which loads. `ADAPTERS` is a
`core.registry.Registry`: the built-in families' modules are imported by its loader at the first lookup.
`load_model` picks the adapter from the checkpoint (sidecar, then config) unless told.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from mdlm_probe.core.checkpoints import adapter_base, is_adapter_folder, read_sidecar, resolve
from mdlm_probe.core.devices import check_device
from mdlm_probe.core.exceptions import BadInput, first_line
from mdlm_probe.core.hub import go_offline, hub_offline, hub_reachable
from mdlm_probe.core.registry import Registry

# The built-in families, one module each; they import this module, so they are imported by the registry's
# loader (at the first lookup), not here. `hf` holds the Hugging Face loading they share.
BUILTIN_MODULES = ("local", "llada", "dream", "mdlm", "masked_lm")


def _register_builtin() -> None:
    """Import the built-in adapters' modules (each registers its class)."""
    from importlib import import_module

    for name in BUILTIN_MODULES:
        try:
            import_module(f"{__package__}.{name}")
        except ImportError:  # a family whose libraries are missing is simply not offered
            if name == "local":
                raise


ADAPTERS = Registry("adapter", loader=_register_builtin, attribute="adapter_name")
register = ADAPTERS.register  # class decorator: @register("name"); a name already taken is refused


def adapter_names() -> list[str]:
    """Every adapter name, the built-in adapters registered first."""
    return ADAPTERS.names()


@dataclass
class CheckpointInfo:
    """A checkpoint as the sampler settings see it before its weights load: what `resolve_sampler` reads."""

    path: Path | str
    sidecar: dict | None
    adapter: str
    extra: dict[str, Any] = field(default_factory=dict)  # {"sampler_defaults": the family's}, as a loaded model has


def describe_checkpoint(ckpt: str | Path, adapter: str | None = None) -> CheckpointInfo:
    """Path, sidecar, adapter and the family's sampler defaults, from the sidecar and config.json only
    (cheap: commands check settings with it before loading data or weights)."""
    path = resolve(ckpt)
    sidecar = read_sidecar(path)
    config_path, detect_side = path, sidecar
    if is_adapter_folder(path):  # a peft LoRA folder: its base's config, and sidecar when its own names no adapter
        config_path = adapter_base(path, sidecar)
        if not (sidecar or {}).get("adapter"):
            detect_side = read_sidecar(config_path)
    name = adapter or detect_adapter(config_path, detect_side)
    cls = ADAPTERS.get(name)  # an unknown name: one line listing the adapters
    uses_config = cls.sampler_defaults.__func__ is not MaskedDiffusionModel.sampler_defaults.__func__
    defaults = cls.sampler_defaults(_read_config(config_path)) if uses_config else {}
    return CheckpointInfo(path=path, sidecar=sidecar, adapter=name, extra={"sampler_defaults": defaults})


@dataclass(eq=False)
class MaskedDiffusionModel:
    """A loaded mask predictor. `module` is the torch module (for training); `tokenizer` a HF tokenizer."""

    module: torch.nn.Module
    tokenizer: Any
    mask_id: int
    eos_id: int | None
    slack_id: int | None = None
    eot_id: int | None = None  # LLaDA's end-of-turn; None elsewhere
    pad_id: int | None = None
    name: str = ""
    path: Path | str | None = None
    sidecar: dict[str, Any] | None = None
    max_length: int = 4096
    extra: dict[str, Any] = field(default_factory=dict)
    _drop_ids: list[int] | None = field(default=None, repr=False)  # special_drop_ids, computed once
    adapter_name = "base"

    # ---- the interface ------------------------------------------------------------------------
    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids (B, L) -> logits (B, L, V), logits[:, i] predicting token i."""
        return self.module(input_ids=ids, attention_mask=attention_mask).logits

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        # Dispatch through `forward` so a subclass's override (shift, position ids) is what callers get.
        return self.forward(*args, **kwargs)

    # ---- optional: block KV caches (the sampler's `cache="prefix"` and `cache="dual"`) ----------
    supports_cache = False  # adapters that implement the two methods below set this True

    def forward_prefix(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, prefix_len: int,
                       suffix_start: int | None = None):
        """Full forward -> (logits (B, L, V), cache). The cache (opaque) holds positions [0, prefix_len), and
        with `suffix_start` also [suffix_start, L) (the dual cache)."""
        raise BadInput(f"adapter {self.adapter_name!r} has no KV cache support; use --cache none")

    def forward_cached(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, cache: Any,
                       prefix_len: int, suffix_start: int | None = None) -> torch.Tensor:
        """Positions [prefix_len, end) of ids (B, L), end = suffix_start or L, reusing `cache` (left unchanged)
        -> logits (B, end - prefix_len, V). `attention_mask` (B, L) or None covers the whole canvas.
        """
        raise BadInput(f"adapter {self.adapter_name!r} has no KV cache support; use --cache none")

    # ---- optional: a write-through cache of the whole canvas (the sampler's `cache="adaptive"`) ------
    def forward_all(self, ids: torch.Tensor, attention_mask: torch.Tensor | None):
        """Full forward -> (logits (B, L, V), cache of every position's keys/values)."""
        raise BadInput(f"adapter {self.adapter_name!r} has no write-through KV cache; use --cache dual")

    def forward_through(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, cache: Any,
                        rows: torch.Tensor) -> torch.Tensor:
        """Canvas positions `rows` (T,), sorted, of ids (B, L) over a `forward_all` cache whose keys/values at
        those positions are replaced, in place, by the ones this forward computes -> logits (B, T, V)."""
        raise BadInput(f"adapter {self.adapter_name!r} has no write-through KV cache; use --cache dual")

    def cache_keys(self, cache: Any, row: int) -> torch.Tensor:
        """The stored keys of canvas position `row`, per layer: (layers, B, kv_heads * head_dim)."""
        raise BadInput(f"adapter {self.adapter_name!r} has no write-through KV cache; use --cache dual")

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    @property
    def vocab_size(self) -> int:
        return int(self.module.get_output_embeddings().weight.shape[0])

    @property
    def stop_ids(self) -> list[int]:
        """Ids that end a response (EOS and, for LLaDA, EoT)."""
        return [i for i in (self.eos_id, self.eot_id) if i is not None]

    def special_drop_ids(self) -> list[int]:
        """Ids removed from the scored text after collapse: padding, any mask left over and every other id the
        tokenizer marks special ([CLS], [UNK], <s>, chat markup); `raw_text` keeps them. `<slack>` is left to
        the collapse map."""
        if self._drop_ids is None:
            tok = self.tokenizer
            special = set(getattr(tok, "all_special_ids", None) or [])
            special |= {i for i, t in (getattr(tok, "added_tokens_decoder", None) or {}).items()
                        if getattr(t, "special", False)}
            special |= {i for i in (self.pad_id, self.mask_id) if i is not None}
            self._drop_ids = sorted(int(i) for i in special if i != self.slack_id)
        return self._drop_ids

    def to(self, device=None, dtype=None) -> "MaskedDiffusionModel":
        self.module.to(device=device, dtype=dtype)
        return self

    # ---- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | str, sidecar: dict | None, **kw) -> "MaskedDiffusionModel":
        raise NotImplementedError

    @classmethod
    def detect(cls, config: dict, sidecar: dict | None) -> bool:
        """Whether this adapter recognises the checkpoint (used when --adapter is not given)."""
        return False

    @classmethod
    def sampler_defaults(cls, config: dict) -> dict[str, Any]:
        """The family's own sampler settings, below the sidecar's and above the global defaults (Dream's plan)."""
        return {}


def _read_config(path: Path | str) -> dict:
    if isinstance(path, Path):
        import json
        try:
            return json.loads((path / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise BadInput(f"corrupt checkpoint {path}: config.json unreadable ({e})") from None
    from transformers import AutoConfig  # Hub name: needs network

    if not hub_reachable():
        go_offline()  # the Hub client reads its local cache at once instead of retrying for half a minute
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=True).to_dict()
    except Exception as e:  # noqa: BLE001 - any Hub failure is the user's input
        if hub_offline():
            raise BadInput(f"checkpoint {path!r} is a Hub name that is not in the local Hub cache, and the Hub is "
                           f"offline; pass a shipped name or a local folder") from None
        raise BadInput(f"cannot load checkpoint {path!r}: {first_line(e, with_type=True)}") from None


def detect_adapter(path: Path | str, sidecar: dict | None) -> str:
    if sidecar and sidecar.get("adapter"):
        return sidecar["adapter"]
    config = _read_config(path)
    for name in ("llada", "dream", "mdlm", "local", "masked-lm"):  # most specific first
        if name in ADAPTERS and ADAPTERS[name].detect(config, sidecar):
            return name
    raise BadInput(f"cannot tell which adapter fits {path}; pass --adapter ({', '.join(ADAPTERS.names())})")


def _quiet_transformers() -> None:
    """No per-load progress bars or advice on stderr: bad input must stay one line."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


INIT_SEED = 0  # seeds the initialisation of weights a checkpoint lacks (--allow-missing-weights)


def check_missing_weights(path, adapter: str, missing: list[str], allow: bool) -> dict[str, Any]:
    """Refuse a checkpoint that lacks weights the adapter needs (they would be random), unless allowed.

    `missing` are the loading report's missing (and re-initialised) keys. Returns what a run records:
    {"missing_weights": [...], "init_seed": INIT_SEED} when some are missing and allowed, else {}."""
    if not missing:
        return {}
    if not allow:
        shown = ", ".join(missing[:4]) + (f", ... ({len(missing)} in all)" if len(missing) > 4 else "")
        raise BadInput(f"checkpoint {path} lacks weights adapter {adapter!r} needs: {shown}; they would be random "
                       f"(pass --allow-missing-weights to decode with a seeded initialisation)")
    return {"missing_weights": list(missing), "init_seed": INIT_SEED}


@contextmanager
def seeded_init(device: str | None):
    """Around `from_pretrained`: weights missing from the checkpoint are initialised from INIT_SEED, so two
    runs agree, and the caller's random state is left as it was."""
    devices = []
    if device and str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.device(device).index or 0]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(INIT_SEED)
        yield


def load_model(ckpt: str | Path, adapter: str | None = None, device: str | None = None,
               dtype: str | torch.dtype | None = None, allow_missing_weights: bool = False) -> MaskedDiffusionModel:
    """Load any supported checkpoint by shipped name, folder or Hub name.

    A checkpoint that lacks weights the adapter needs is BadInput unless `allow_missing_weights`; then the
    missing weights are initialised from a fixed seed and listed in `model.extra["missing_weights"]`."""
    _quiet_transformers()
    check_device(device)
    info = describe_checkpoint(ckpt, adapter)
    path, sidecar, name = info.path, info.sidecar, info.adapter
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                 "float16": torch.float16, "fp16": torch.float16, "float64": torch.float64}.get(dtype) or dtype
        if isinstance(dtype, str):
            raise BadInput(f"unknown dtype {dtype!r}")
    try:
        if is_adapter_folder(path):
            from .peft_folder import load_adapter_folder  # imports this module: a cycle at the top

            m = load_adapter_folder(path, sidecar, adapter, device=device, dtype=dtype,
                                    allow_missing_weights=allow_missing_weights)
        else:
            m = ADAPTERS[name].load(path, sidecar, device=device, dtype=dtype,
                                    allow_missing_weights=allow_missing_weights)
    except BadInput:
        raise
    except SafetensorError as e:  # truncated or overwritten weights: not an OSError
        raise BadInput(f"corrupt checkpoint {ckpt}: its weights (model.safetensors) cannot be read "
                       f"({first_line(e)})") from None
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = first_line(e)
        raise BadInput(f"cannot load checkpoint {ckpt} with adapter {name!r}: {first}") from None
    m.name = (sidecar or {}).get("name") or (path.name if isinstance(path, Path) else str(path))
    m.path, m.sidecar = path, sidecar
    m.extra.update(info.extra)  # the family's sampler defaults, as resolve_sampler reads them before loading
    if m.mask_id is None:
        raise BadInput(f"checkpoint {ckpt} has no mask token; a masked diffusion LM needs one")
    if not 0 <= m.mask_id < m.vocab_size:
        raise BadInput(f"mask id {m.mask_id} is outside the vocabulary (size {m.vocab_size}) of {ckpt}")
    m.module.eval()
    return m
