"""Adapters for real checkpoints: LLaDA, Dream, MDLM and any transformers masked LM.

Each family is one class: `detect` recognises its config.json (model_type / architectures / auto_map),
`load` builds the module and tokenizer, and `forward` hides how the family is called, so that every
sampler, hook and scorer sees logits (B, L, V) with logits[:, i] predicting token i.

Loading goes through a small compatibility layer for remote code written for transformers 4 (LLaDA's and
Dream's published files, see below), refuses a checkpoint that lacks weights the model needs (they would be
random), and checks at load that a left-padded prompt gets the logits it gets alone (one warning line if not).

Special ids come, in this order, from the sidecar (`mdlm_probe.json`, if the user wrote one), the
config, the tokenizer, then the family's published default. A default outside the vocabulary is not
used, so a checkpoint that names no mask token is one clear error rather than a wrong guess.

Hub names (need network): GSAI-ML/LLaDA-8B-Instruct, GSAI-ML/LLaDA-1.5, inclusionAI/LLaDA-MoE-7B-A1B-Instruct,
Dream-org/Dream-v0-Instruct-7B, kuleshov-group/mdlm-owt, answerdotai/ModernBERT-base, bert-base-uncased.
"""

from __future__ import annotations

import inspect
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from mdlm_probe.core.exceptions import BadInput, first_line
from .base import ADAPTERS, MaskedDiffusionModel, _read_config, check_missing_weights, register, seeded_init
from .block_forward import LayoutError, find_layout

log = logging.getLogger(__name__)

HUB_NAMES = {
    "llada": "GSAI-ML/LLaDA-8B-Instruct",
    "dream": "Dream-org/Dream-v0-Instruct-7B",
    "mdlm": "kuleshov-group/mdlm-owt",
    "masked-lm": "answerdotai/ModernBERT-base",
}
SPECIFIC = ("llada", "dream", "mdlm")  # families a config names unambiguously
NEG_INF = float("-inf")


def _config_names(config: dict) -> list[str]:
    """model_type, architectures and auto_map targets, lower-cased: what `detect` matches against."""
    names = [str(config.get("model_type") or "")] + [str(a) for a in config.get("architectures") or []]
    auto = config.get("auto_map") or {}
    names += [str(v[0] if isinstance(v, (list, tuple)) else v) for v in auto.values()]
    return [n.lower() for n in names if n]


def _vocab_id(tok, token: str) -> int | None:
    """The id of `token` if the tokenizer really has it (not the unknown-token fallback)."""
    if tok is None:
        return None
    try:
        return tok.get_vocab().get(token)
    except Exception:  # noqa: BLE001 - a tokenizer without a vocab just lacks the token
        return None


def _as_id(v: Any) -> int | None:
    if isinstance(v, (list, tuple)):
        v = v[0] if v else None
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _pick(vocab: int, *candidates: Any) -> int | None:
    """The first candidate that is an id inside the vocabulary."""
    for c in candidates:
        c = _as_id(c)
        if c is not None and 0 <= c < vocab:
            return c
    return None


# ------------------------------------------------------------------------- remote code written for transformers 4
# LLaDA's published modeling_llada.py (and other remote code of its time) was written for transformers 4. Under
# transformers 5 it breaks in three known ways; each fix below applies only when its trait is there, so a file
# that already does the modern thing, or transformers 4 itself, sees no change. Nothing is written to the
# checkpoint folder: the fixes live in a subclass made in memory at load.
#  1. The model class never calls `post_init()`; transformers 5 reads `all_tied_weights_keys`, which only
#     `post_init()` sets -> call it at the end of `__init__` when that attribute is missing.
#  2. `tie_weights(self)` takes no arguments; transformers 5 calls `tie_weights(missing_keys=...,
#     recompute_mapping=...)` -> accept and drop them, and run the file's own tying (LLaDA: the output layer
#     is the input embedding when `weight_tying` is set).
#  3. The config takes `use_cache` as an argument, transformers 5 drops it, and `forward` reads
#     `self.config.use_cache` -> put back the value config.json has (False when it has none: masked diffusion
#     models have no KV cache for their full-canvas forward).
# Dream's file (copied from transformers 4's Qwen2) has two more:
#  4. Its rotary embedding looks up `ROPE_INIT_FUNCTIONS["default"]`, which transformers 5 removed -> the
#     standard frequencies are offered under that name while the model is built.
#  5. transformers 5 builds the model on the meta device and leaves non-persistent buffers (the rotary
#     `inv_freq`) as uninitialised memory unless the model's `_init_weights` refills them, which a
#     transformers 4 file does not: positions would be silently wrong -> after loading, every parameter-free
#     module that owns non-persistent buffers and has `reset_parameters()` recomputes them.
def _compat_class(cls: type) -> type:
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
def _legacy_rope():
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


def _refill_buffers(module: torch.nn.Module) -> None:
    """Fix 5: recompute non-persistent buffers of parameter-free modules that know how (`reset_parameters`)."""
    for sub in module.modules():
        own = getattr(sub, "_non_persistent_buffers_set", ())
        resettable = callable(getattr(sub, "reset_parameters", None))
        if own and resettable and not any(True for _ in sub.parameters(recurse=False)):
            with torch.no_grad():
                sub.reset_parameters()


def _restore_use_cache(module: torch.nn.Module, config: dict) -> None:
    """Fix 3 above: the config.json value of `use_cache`, where the loaded config lost it."""
    cfg = getattr(module, "config", None)
    if cfg is not None and not hasattr(cfg, "use_cache"):
        cfg.use_cache = bool(config.get("use_cache", False))


def _really_missing(module: torch.nn.Module, missing: list[str]) -> list[str]:
    """Missing keys less those the model's own `tie_weights()` filled (shared with a loaded parameter)."""
    if not missing:
        return []
    params = dict(module.named_parameters(remove_duplicate=False))
    loaded = {id(p) for k, p in params.items() if k not in missing}
    return sorted(k for k in missing if k not in params or id(params[k]) not in loaded)


class RemoteModel(MaskedDiffusionModel):
    """Shared loading for Hugging Face checkpoints; subclasses set the family's markers and call."""

    markers: tuple[str, ...] = ()  # substrings of model_type / architectures / auto_map that mean "this family"
    auto_class = "AutoModel"
    # Why a left-padded batch cannot give each prompt its output alone (None: the forward masks padding; the
    # load-time probe checks that it really does).
    padding_attended: str | None = None
    # Block KV caches: the layout block_forward.py knows ("llada" | "dream"), or why the family has none.
    cache_family: str | None = None
    no_cache_reason = "this family has no cached forward"
    cached_lookback = 0  # rows before the block a cached step recomputes as well (counted in tokens forwarded)

    # ---- detection ----------------------------------------------------------------------------
    @classmethod
    def detect(cls, config: dict, sidecar: dict | None) -> bool:
        return any(m in n for n in _config_names(config) for m in cls.markers)

    @classmethod
    def _check_family(cls, path, config: dict, sidecar: dict | None) -> None:
        """A forced adapter may run an unknown config, but not one that plainly belongs to another family."""
        named = (sidecar or {}).get("adapter")
        if named and named != cls.adapter_name:
            raise BadInput(f"--adapter {cls.adapter_name} does not fit {path}: its sidecar says adapter {named!r}")
        if cls.detect(config, sidecar):
            return
        for other in SPECIFIC + ("masked-lm",):
            if other != cls.adapter_name and other in ADAPTERS and ADAPTERS[other].detect(config, sidecar):
                raise BadInput(f"--adapter {cls.adapter_name} does not fit {path}: its config is a {other} model "
                               f"(model_type {config.get('model_type')!r}); use --adapter {other}")

    # ---- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | str, sidecar: dict | None, device=None, dtype=None, allow_missing_weights=False,
             **kw) -> "RemoteModel":
        config = _read_config(path)
        cls._check_family(path, config, sidecar)
        module, missing = cls._load_module(path, config, device, dtype)
        tok = cls._load_tokenizer(path)
        m = cls(module=module, tokenizer=tok, mask_id=None, eos_id=None)
        m.extra["vocab_size"] = m._probe(path)  # first: a module of the wrong family also "lacks" weights
        m.extra.update(check_missing_weights(path, cls.adapter_name, missing, allow_missing_weights))
        side = sidecar or {}
        ids = cls.resolve_ids(config, tok, m.extra["vocab_size"], str(path))
        # A sidecar's ids are the user's word (load_model range-checks the mask); the rest are candidates.
        m.mask_id = _first(_as_id(side.get("mask_id")), ids["mask_id"])
        m.eos_id = _first(_as_id(side.get("eos_id")), ids["eos_id"])
        m.eot_id = _first(_as_id(side.get("eot_id")), ids.get("eot_id"))
        m.pad_id = _first(_as_id(side.get("pad_id")), ids.get("pad_id"), m.eos_id)
        m.slack_id = _as_id(side.get("slack_id"))
        if m.eot_id == m.eos_id:
            m.eot_id = None
        m.max_length = int(side.get("max_length") or cls.max_length_of(config, tok))
        m.finish_tokenizer()
        m.extra["batch_invariant"] = m._check_padding(path)
        return m

    @classmethod
    def _load_module(cls, path, config: dict, device, dtype) -> tuple[torch.nn.Module, list[str]]:
        """The module, through the compatibility layer when it is remote code, and the weights it lacks."""
        import transformers

        kwargs: dict[str, Any] = {"trust_remote_code": True, "dtype": dtype or "auto", "output_loading_info": True}
        if device:
            kwargs["device_map"] = device  # straight onto the device: an 8B model need not pass through CPU RAM
        try:
            loader = getattr(transformers, cls.auto_class)
            ref = (config.get("auto_map") or {}).get(cls.auto_class)
            if ref:  # remote code: resolve its class as the Auto class would, then load through the fixes
                from transformers import AutoConfig
                from transformers.dynamic_module_utils import get_class_from_dynamic_module

                kwargs["config"] = AutoConfig.from_pretrained(path, trust_remote_code=True)
                ref = ref[0] if isinstance(ref, (list, tuple)) else ref
                loader = _compat_class(get_class_from_dynamic_module(ref, str(path)))
            with seeded_init(device), _legacy_rope():
                module, info = loader.from_pretrained(path, **kwargs)
                if ref:
                    _refill_buffers(module)
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001 - any load failure (missing file, wrong class, missing dep) is input
            raise BadInput(f"cannot load {path} with adapter {cls.adapter_name!r}: {first_line(e, with_type=True)}") from None
        _restore_use_cache(module, config)
        missing = sorted(set(info.get("missing_keys") or []) | {k[0] if isinstance(k, tuple) else k
                                                                  for k in info.get("mismatched_keys") or []})
        return module, _really_missing(module, missing)

    @classmethod
    def _load_tokenizer(cls, path):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        except Exception as e:  # noqa: BLE001
            raise BadInput(f"cannot load the tokenizer of {path}: {first_line(e, with_type=True)}") from None

    def _probe(self, path) -> int:
        """One forward pass on two tokens: a wrong adapter fails here, with one line. Returns V."""
        dev = self.device
        try:
            with torch.no_grad():
                out = self.forward(torch.zeros((1, 2), dtype=torch.long, device=dev))
            if not isinstance(out, torch.Tensor) or out.dim() != 3 or tuple(out.shape[:2]) != (1, 2):
                raise TypeError(f"forward gave {type(out).__name__} {tuple(getattr(out, 'shape', ()))}, "
                                "not logits (1, 2, V)")
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001 - the module does not take this family's call
            raise BadInput(f"adapter {self.adapter_name!r} does not fit {path}: {first_line(e, with_type=True)}") from None
        return int(out.shape[-1])

    def _check_padding(self, path) -> bool:
        """Whether a prompt left-padded inside a batch gets the logits it gets alone (one line at load if not).

        Checked with two small forwards: 3 tokens alone and behind 2 pads (mask 0 there), on the logits of the
        2nd and 3rd token: the 1st is a prompt token, never predicted (Dream's shift gives it a pad's logits)."""
        reason = self.padding_attended
        if reason is None:
            V, dev = self.vocab_size, self.device
            toks = [t % V for t in (self.eos_id or 0, 7, self.mask_id or 0)]
            pad = (self.pad_id if self.pad_id is not None else toks[0]) % V
            alone = torch.tensor([toks], device=dev)  # (1, 3)
            padded = torch.tensor([[pad, pad] + toks], device=dev)  # (1, 5)
            am = torch.tensor([[0, 0, 1, 1, 1]], device=dev)
            with torch.no_grad():
                a = self.forward(alone)[:, 1:].float()  # (1, 2, V)
                b = self.forward(padded, attention_mask=am)[:, 3:].float()
            finite = torch.isfinite(a)  # the -inf mask logit is left out
            diff = float((a[finite] - b[finite]).abs().max())
            rel = 1e-3 if self.dtype in (torch.float32, torch.float64) else 5e-2  # half precision rounds more
            if diff <= rel * max(1.0, float(a[finite].abs().max())):
                return True
            reason = f"its forward changes when padding is added (max logit difference {diff:.3g})"
        log.warning(f"mdlm-probe: warning: adapter {self.adapter_name!r} on {path}: {reason}, so a prompt's output "
                    f"depends on the other prompts in its batch; use --batch-size 1 for batch-independent results")
        return False

    # ---- per-family facts ---------------------------------------------------------------------
    @classmethod
    def resolve_ids(cls, config: dict, tok, vocab: int, name: str) -> dict[str, Any]:
        """Candidate ids (config, tokenizer, family default); `load` keeps the first inside the vocabulary."""
        raise NotImplementedError

    @classmethod
    def max_length_of(cls, config: dict, tok) -> int:
        for key in ("max_sequence_length", "max_position_embeddings", "model_length", "n_positions"):
            if isinstance(config.get(key), int):
                return config[key]
        return 4096

    def finish_tokenizer(self) -> None:
        """Hook for families whose tokenizer lacks a token the model uses (MDLM's mask)."""

    @property
    def vocab_size(self) -> int:
        return int(self.extra["vocab_size"])

    # ---- block KV caches (sampler cache="prefix" | "dual"), by block_forward.py ----------------------------
    # The family's own forward gives the full step (with hooks keeping the keys/values), and block_forward
    # re-runs the checkpoint's own modules for the rows a cached step needs. Subclasses say which rows
    # (`_first_row`), which mask the model really applies (`_cache_mask`) and how raw rows become logits.
    def _layout(self):
        """(BlockForward or None, why not) for the module as it is now (a peft wrap re-checks)."""
        memo = getattr(self, "_layout_memo", None)
        if memo is None or memo[0] is not self.module:
            bf, why = None, self.no_cache_reason
            if self.cache_family is not None:
                try:
                    bf, why = find_layout(self.cache_family, self.module), None
                except LayoutError as e:
                    why = f"its layout is not the one the cached forward knows ({e})"
            memo = self._layout_memo = (self.module, bf, why)
        return memo[1], memo[2]

    @property
    def cache_refusal(self) -> str | None:
        """Why `--cache prefix|dual` is refused for this model (None: supported)."""
        return self._layout()[1]

    @property
    def supports_cache(self) -> bool:
        return self.cache_refusal is None

    def _block_forward(self):
        bf, why = self._layout()
        if bf is None:
            raise BadInput(f"--cache prefix|dual is not available for {self.name or self.path} (adapter "
                           f"{self.adapter_name!r}): {why}; use --cache none")
        return bf

    def _first_row(self, prefix_len: int) -> int:
        """The first canvas row a cached step recomputes."""
        return max(prefix_len - self.cached_lookback, 0)

    def _cache_mask(self, attention_mask):
        """The mask the family's forward really applies (what the cached rows must attend with)."""
        return attention_mask

    def _cached_logits(self, raw: torch.Tensor, prefix_len: int) -> torch.Tensor:
        """Raw logits of rows [_first_row, end) -> logits (B, end - prefix_len, V)."""
        return raw

    def forward_prefix(self, ids, attention_mask, prefix_len, suffix_start=None):
        bf = self._block_forward()
        L, dev, first = ids.shape[1], ids.device, self._first_row(prefix_len)
        keep = torch.arange(first, device=dev)
        if suffix_start is not None:
            keep = torch.cat([keep, torch.arange(suffix_start, L, device=dev)])
        spare = (L if suffix_start is None else suffix_start) - first  # the rows each cached step runs
        try:
            return bf.prefix(self.forward, ids, attention_mask, self._cache_mask(attention_mask), keep, spare)
        except LayoutError as e:  # the module's forward bypassed a projection the layout names
            raise BadInput(f"--cache prefix|dual is not available for {self.name or self.path}: {e}") from None

    def forward_cached(self, ids, attention_mask, cache, prefix_len, suffix_start=None):
        bf = self._block_forward()
        end = ids.shape[1] if suffix_start is None else suffix_start
        rows = torch.arange(self._first_row(prefix_len), end, device=ids.device)
        return self._cached_logits(bf.cached(ids, self._cache_mask(attention_mask), cache, rows), prefix_len)


# --------------------------------------------------------------------------------------------- LLaDA
@register("llada")
class LLaDAModel(RemoteModel):
    """LLaDA-8B (Base/Instruct), LLaDA-1.5, LLaDA-MoE: `AutoModel`, `model(x, attention_mask=...).logits`.

    The 2-D attention mask goes in as is and positions are not renumbered: that is what LLaDA's own
    `generate()` does with left padding, and with rotary positions a shift of every real token changes
    nothing. LLaDA's first published modeling file ignores the mask (padding is attended); the load-time
    padding check says so for such a checkpoint. Loads through the transformers-4 compatibility layer above.
    Block KV caches (`--cache prefix|dual`) drive the checkpoint's own modules (block_forward.LLaDABlocks).
    """

    markers = ("llada",)
    cache_family = "llada"
    MASK, EOS, EOT = 126336, 126081, 126348
    ILLADA_MASK = 5

    @classmethod
    def resolve_ids(cls, config, tok, vocab, name):
        family_mask = cls.ILLADA_MASK if "illada" in name.lower() else cls.MASK
        return {
            "mask_id": _pick(vocab, config.get("mask_token_id"), getattr(tok, "mask_token_id", None),
                                    _vocab_id(tok, "<|mdm_mask|>"), family_mask),
            "eos_id": _pick(vocab, config.get("eos_token_id"), getattr(tok, "eos_token_id", None),
                                   _vocab_id(tok, "<|endoftext|>"), cls.EOS),
            "eot_id": _pick(vocab, config.get("eot_token_id"), _vocab_id(tok, "<|eot_id|>"), cls.EOT),
            "pad_id": _pick(vocab, getattr(tok, "pad_token_id", None), config.get("pad_token_id")),
        }

    def forward(self, ids, attention_mask=None):
        return self.module(ids, attention_mask=attention_mask).logits  # (B, L, V)

    def _cache_mask(self, attention_mask):
        # LLaDA's first published file ignores the mask (the load-time padding check then fails): so do the
        # cached rows, or they would not match its full forward.
        return attention_mask if self.extra.get("batch_invariant", True) else None


# --------------------------------------------------------------------------------------------- Dream
@register("dream")
class DreamModel(RemoteModel):
    """Dream-v0 (Base/Instruct): `model(x, attention_mask, position_ids).logits`, trained AR-style.

    Dream's logits[:, i] predict token i + 1, so they are shifted right by one (position 0 keeps its
    own) and the rest of the toolkit never needs to know. With left padding, the mask becomes Dream's
    bool (B, 1, L, L) form and positions count real tokens only, as Dream's `diffusion_generate` does.
    Block KV caches drive the checkpoint's own modules (block_forward.DreamLayers) with the same positions.
    """

    markers = ("dream",)
    cache_family = "dream"
    # Position p's logits are row p - 1's output, which must see the current block: that row is recomputed
    # every cached step (the cache holds the prefix up to it).
    cached_lookback = 1
    MASK, PAD = 151666, 151643
    # What Dream's `diffusion_generate` uses when the caller does not say: `DreamGenerationConfig.
    # from_model_config(model.config)`, i.e. config.json (not generation_config.json) over the defaults of
    # transformers 4.46's PretrainedConfig, which Dream documents: top_k 50 and top_p 1.0 (no filter), eps 1e-3.
    GENERATION_DEFAULTS = {"top_k": 50, "top_p": 1.0, "eps": 1e-3}
    ALGS = ("maskgit_plus", "topk_margin", "entropy", "origin")

    @classmethod
    def sampler_defaults(cls, config: dict) -> dict[str, Any]:
        """Dream's plan and its generation settings from config.json, as mdlm-probe sampler settings.

        A setting config.json gives (even null: Dream then has no filter) is taken as Dream would take it;
        otherwise the transformers 4.46 default. Dream's own fallbacks for temperature (1.0 from
        PretrainedConfig) and alg ('origin') are not taken unless config.json sets them: mdlm-probe decodes
        greedily (T = 0) by default, and Dream's examples always pass both; its confidence rule by default.
        """
        out: dict[str, Any] = {"schedule": "dream", "remasking": "maskgit_plus"}
        for key, default in cls.GENERATION_DEFAULTS.items():
            out[key] = config[key] if key in config else default
        out["eps"] = out["eps"] or cls.GENERATION_DEFAULTS["eps"]  # eps null: DreamGenerationConfig's 1e-3
        if out["top_k"] is None:
            out["top_k"] = 0  # no filter
        for key in ("temperature", "alg_temp"):
            if config.get(key) is not None:
                out[key] = config[key]
        if config.get("alg") in cls.ALGS:
            out["remasking"] = config["alg"]
        return out

    @classmethod
    def resolve_ids(cls, config, tok, vocab, name):
        eos = _pick(vocab, config.get("eos_token_id"), getattr(tok, "eos_token_id", None),
                           _vocab_id(tok, "<|endoftext|>"), cls.PAD)
        eos_list = config.get("eos_token_id") if isinstance(config.get("eos_token_id"), list) else []
        return {
            "mask_id": _pick(vocab, config.get("mask_token_id"), getattr(tok, "mask_token_id", None),
                                    _vocab_id(tok, "<|mask|>"), cls.MASK),
            "eos_id": eos,
            # Instruct turns end with <|im_end|>; it stops a response like EOS does.
            "eot_id": _pick(vocab, *(eos_list[1:2] or [None]), _vocab_id(tok, "<|im_end|>")),
            "pad_id": _pick(vocab, config.get("pad_token_id"), getattr(tok, "pad_token_id", None), cls.PAD),
        }

    def forward(self, ids, attention_mask=None):
        position_ids, mask = None, "full"
        if attention_mask is not None and bool((attention_mask == 0).any()):
            am = attention_mask.bool()  # (B, L)
            position_ids = (am.long().cumsum(-1) - 1).masked_fill(~am, 1)
            mask = am[:, None, :, None] & am[:, None, None, :]  # (B, 1, L, L)
        raw = self.module(ids, mask, position_ids).logits  # (B, L, V), raw[:, i] predicts token i + 1
        return torch.cat([raw[:, :1], raw[:, :-1]], dim=1)

    def _cached_logits(self, raw, prefix_len):
        # raw rows [p - 1, end) -> positions [p, end), shifted as `forward` shifts (position 0 keeps its own)
        return torch.cat([raw[:, :1], raw[:, :-1]], dim=1) if prefix_len == 0 else raw[:, :-1]


# --------------------------------------------------------------------------------------------- MDLM
@register("mdlm")
class MDLMModel(RemoteModel):
    """kuleshov-group MDLM: `AutoModelForMaskedLM`, called as `backbone(x, sigma)` with sigma = 0.

    mdlm-owt is not time-conditioned, so sigma only has to have shape (B,). Its GPT-2 vocabulary gets one
    extra id, 50257, for the mask; MDLM's SUBS parameterisation never predicts the mask, so its logit is
    -inf. The backbone takes no attention mask: in a left-padded batch the padding (EOS) is attended.
    """

    markers = ("mdlm",)
    auto_class = "AutoModelForMaskedLM"
    padding_attended = "MDLM's backbone takes no attention mask (padding is attended)"
    no_cache_reason = ("MDLM's backbone (a DiT) is called whole and takes no attention mask, "
                       "so there are no per-layer keys/values to keep or padding to mask")
    MASK, EOS = 50257, 50256

    @classmethod
    def _load_tokenizer(cls, path):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        except Exception:  # noqa: BLE001 - mdlm-owt ships no tokenizer: it is GPT-2's (needs network once)
            try:
                return AutoTokenizer.from_pretrained("gpt2")
            except Exception as e:  # noqa: BLE001
                raise BadInput(f"{path} has no tokenizer and GPT-2's could not be loaded: {first_line(e, with_type=True)}") from None

    @classmethod
    def resolve_ids(cls, config, tok, vocab, name):
        return {
            "mask_id": _pick(vocab, config.get("mask_token_id"), config.get("mask_index"),
                                    getattr(tok, "mask_token_id", None), cls.MASK),
            "eos_id": _pick(vocab, getattr(tok, "eos_token_id", None), config.get("eos_token_id"), cls.EOS),
            "pad_id": None,  # falls back to EOS, which MDLM saw between packed documents
        }

    def finish_tokenizer(self) -> None:
        # GPT-2 has 50257 tokens; naming id 50257 lets raw text show a left-over mask instead of nothing.
        if self.mask_id is not None and len(self.tokenizer) == self.mask_id and self.tokenizer.mask_token is None:
            self.tokenizer.add_special_tokens({"mask_token": "<|mask|>"})

    def forward(self, ids, attention_mask=None):
        sigma = torch.zeros(ids.shape[0], device=ids.device)  # (B,)
        out = self.module.backbone(ids, sigma)
        logits = out[0] if isinstance(out, (tuple, list)) else out  # (B, L, V)
        if self.mask_id is not None:
            logits = logits.index_fill(-1, torch.tensor([self.mask_id], device=logits.device), NEG_INF)
        return logits


# --------------------------------------------------------------------------------------------- any masked LM
@register("masked-lm")
class MaskedLMModel(RemoteModel):
    """Any `AutoModelForMaskedLM` (BERT, RoBERTa, ModernBERT, ...) as a mask predictor with its own [MASK].

    The mask token itself is never proposed (its logit is -inf): a committed [MASK] would stay a mask.
    EOS is the tokenizer's EOS, else its [SEP]. With left padding, positions count real tokens only (BERT's
    absolute positions would otherwise shift with the padding); models whose position embedding reserves a
    padding index (RoBERTa, XLM-R) number real tokens from padding_idx + 1, as they do themselves.
    """

    markers = ("formaskedlm",)
    auto_class = "AutoModelForMaskedLM"
    no_cache_reason = ("masked LMs of other families (BERT, RoBERTa, ModernBERT, ...) each lay out attention "
                       "their own way; the cached forward knows LLaDA's and Dream's layouts only")

    @classmethod
    def resolve_ids(cls, config, tok, vocab, name):
        return {
            "mask_id": _pick(vocab, getattr(tok, "mask_token_id", None), config.get("mask_token_id")),
            "eos_id": _pick(vocab, getattr(tok, "eos_token_id", None), getattr(tok, "sep_token_id", None),
                                   config.get("eos_token_id"), config.get("sep_token_id")),
            "pad_id": _pick(vocab, getattr(tok, "pad_token_id", None), config.get("pad_token_id")),
        }

    @classmethod
    def max_length_of(cls, config, tok) -> int:
        n = super().max_length_of(config, tok)
        return min(n, int(getattr(tok, "model_max_length", n) or n))

    def _position_offset(self) -> int | None:
        """None if the module takes no position ids, else where real tokens' positions start."""
        if "position_offset" not in self.extra:
            offset = None
            if "position_ids" in inspect.signature(self.module.forward).parameters:
                base = getattr(self.module, "base_model", self.module)
                pe = getattr(getattr(base, "embeddings", None), "position_embeddings", None)
                pad_idx = getattr(pe, "padding_idx", None)
                offset = 0 if pad_idx is None else pad_idx + 1
            self.extra["position_offset"] = offset
        return self.extra["position_offset"]

    def forward(self, ids, attention_mask=None):
        kwargs = {}
        offset = self._position_offset() if attention_mask is not None else None
        if offset is not None:
            am = attention_mask.long()
            # real tokens 0, 1, ... (from padding_idx + 1 where reserved); padding at the first position
            kwargs["position_ids"] = ((am.cumsum(-1) - 1).clamp(min=0) + offset) * am + max(offset - 1, 0) * (1 - am)
        logits = self.module(input_ids=ids, attention_mask=attention_mask, **kwargs).logits  # (B, L, V)
        if self.mask_id is not None:
            logits = logits.index_fill(-1, torch.tensor([self.mask_id], device=logits.device), NEG_INF)
        return logits
