"""The shared loading of Hugging Face checkpoints (`HFModel`), which each family's adapter subclasses.

A family is one class in its own module (`llada`, `dream`, `mdlm`, `masked_lm`): `detect` recognises its
config.json (model_type / architectures / auto_map), `load` (here) builds the module and tokenizer, and
`forward` hides how the family is called, so that every sampler, hook and scorer sees logits (B, L, V) with
logits[:, i] predicting token i.

Loading goes through the shims for remote code written for transformers 4 (`compat`), refuses a checkpoint
that lacks weights the model needs (they would be random), and checks at load that a left-padded prompt gets
the logits it gets alone (one warning line if not).

Special ids come, in this order, from the sidecar (`mdlm_probe.json`, if the user wrote one), the
config, the tokenizer, then the family's published default. A default outside the vocabulary is not
used, so a checkpoint that names no mask token is one clear error rather than a wrong guess.

Block KV caches: a family names its driver class (`block_driver`, a `block_forward.BlockForward` subclass in
the family's module); `forward_prefix`/`forward_cached` here run it.

Hub names (need network): GSAI-ML/LLaDA-8B-Instruct, GSAI-ML/LLaDA-1.5, inclusionAI/LLaDA-MoE-7B-A1B-Instruct,
Dream-org/Dream-v0-Instruct-7B, kuleshov-group/mdlm-owt, answerdotai/ModernBERT-base, bert-base-uncased.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from mdlm_probe.core.exceptions import BadInput, first_line
from .base import ADAPTERS, MaskedDiffusionModel, _read_config, check_missing_weights, seeded_init
from .block_forward import BlockForward, LayoutError
from .compat import compat_class, legacy_rope, refill_buffers, restore_use_cache

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


def _really_missing(module: torch.nn.Module, missing: list[str]) -> list[str]:
    """Missing keys less those the model's own `tie_weights()` filled (shared with a loaded parameter)."""
    if not missing:
        return []
    params = dict(module.named_parameters(remove_duplicate=False))
    loaded = {id(p) for k, p in params.items() if k not in missing}
    return sorted(k for k in missing if k not in params or id(params[k]) not in loaded)


class HFModel(MaskedDiffusionModel):
    """Shared loading for Hugging Face checkpoints; subclasses (one module per family) set the family's markers
    and call."""

    markers: tuple[str, ...] = ()  # substrings of model_type / architectures / auto_map that mean "this family"
    auto_class = "AutoModel"
    # Why a left-padded batch cannot give each prompt its output alone (None: the forward masks padding; the
    # load-time probe checks that it really does).
    padding_attended: str | None = None
    # Block KV caches: the family's driver (a BlockForward subclass in its module), or why the family has none.
    block_driver: type[BlockForward] | None = None
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
             **kw) -> "HFModel":
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
                loader = compat_class(get_class_from_dynamic_module(ref, str(path)))
            with seeded_init(device), legacy_rope():
                module, info = loader.from_pretrained(path, **kwargs)
                if ref:
                    refill_buffers(module)
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001 - any load failure (missing file, wrong class, missing dep) is input
            raise BadInput(f"cannot load {path} with adapter {cls.adapter_name!r}: {first_line(e, with_type=True)}") from None
        restore_use_cache(module, config)
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
            if self.block_driver is not None:
                try:
                    bf, why = self.block_driver(self.module), None
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

    def forward_all(self, ids, attention_mask):
        bf, L = self._block_forward(), ids.shape[1]
        return bf.prefix(self.forward, ids, attention_mask, self._cache_mask(attention_mask),
                         torch.arange(L, device=ids.device))

    def forward_through(self, ids, attention_mask, cache, rows):
        src = (rows - self.cached_lookback).clamp(min=0)  # the row whose output predicts each row (Dream: the one before)
        run = torch.unique(torch.cat([src, rows]))  # sorted
        raw = self._block_forward().through(ids, self._cache_mask(attention_mask), cache, run)
        return raw[:, torch.searchsorted(run, src)]

    def cache_keys(self, cache, row):
        return torch.stack([k[:, :, row].flatten(1) for k, _ in cache.kv])
