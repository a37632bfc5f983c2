"""Adapters for real checkpoints: LLaDA, Dream, MDLM and any transformers masked LM.

Each family is one class: `detect` recognises its config.json (model_type / architectures / auto_map),
`load` builds the module and tokenizer, and `forward` hides how the family is called, so that every
sampler, hook and scorer sees logits (B, L, V) with logits[:, i] predicting token i.

Special ids come, in this order, from the sidecar (`mdlm_probe.json`, if the user wrote one), the
config, the tokenizer, then the family's published default. A default outside the vocabulary is not
used, so a checkpoint that names no mask token is one clear error rather than a wrong guess.

Hub names (need network): GSAI-ML/LLaDA-8B-Instruct, GSAI-ML/LLaDA-1.5, inclusionAI/LLaDA-MoE-7B-A1B-Instruct,
Dream-org/Dream-v0-Instruct-7B, kuleshov-group/mdlm-owt, answerdotai/ModernBERT-base, bert-base-uncased.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import BadInput
from . import ADAPTERS, MaskedDiffusionModel, _read_config, register

HUB_NAMES = {
    "llada": "GSAI-ML/LLaDA-8B-Instruct",
    "dream": "Dream-org/Dream-v0-Instruct-7B",
    "mdlm": "kuleshov-group/mdlm-owt",
    "masked-lm": "answerdotai/ModernBERT-base",
}
SPECIFIC = ("llada", "dream", "mdlm")  # families a config names unambiguously
NEG_INF = float("-inf")


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return f"{type(e).__name__}: {s.splitlines()[0]}" if s else type(e).__name__


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


class RemoteModel(MaskedDiffusionModel):
    """Shared loading for Hugging Face checkpoints; subclasses set the family's markers and call."""

    markers: tuple[str, ...] = ()  # substrings of model_type / architectures / auto_map that mean "this family"
    auto_class = "AutoModel"

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
    def load(cls, path: Path | str, sidecar: dict | None, device=None, dtype=None, **kw) -> "RemoteModel":
        config = _read_config(path)
        cls._check_family(path, config, sidecar)
        module = cls._load_module(path, device, dtype)
        tok = cls._load_tokenizer(path)
        m = cls(module=module, tokenizer=tok, mask_id=None, eos_id=None)
        m.extra["vocab_size"] = m._probe(path)
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
        return m

    @classmethod
    def _load_module(cls, path, device, dtype) -> torch.nn.Module:
        import transformers

        kwargs: dict[str, Any] = {"trust_remote_code": True, "dtype": dtype or "auto"}
        if device:
            kwargs["device_map"] = device  # straight onto the device: an 8B model need not pass through CPU RAM
        try:
            return getattr(transformers, cls.auto_class).from_pretrained(path, **kwargs)
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001 - any load failure (missing file, wrong class, missing dep) is input
            raise BadInput(f"cannot load {path} with adapter {cls.adapter_name!r}: {_first_line(e)}") from None

    @classmethod
    def _load_tokenizer(cls, path):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        except Exception as e:  # noqa: BLE001
            raise BadInput(f"cannot load the tokenizer of {path}: {_first_line(e)}") from None

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
            raise BadInput(f"adapter {self.adapter_name!r} does not fit {path}: {_first_line(e)}") from None
        return int(out.shape[-1])

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


# --------------------------------------------------------------------------------------------- LLaDA
@register("llada")
class LLaDAModel(RemoteModel):
    """LLaDA-8B (Base/Instruct), LLaDA-1.5, LLaDA-MoE: `AutoModel`, `model(x, attention_mask=...).logits`.

    The 2-D attention mask goes in as is and positions are not renumbered: that is what LLaDA's own
    `generate()` does with left padding.
    """

    markers = ("llada",)
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


# --------------------------------------------------------------------------------------------- Dream
@register("dream")
class DreamModel(RemoteModel):
    """Dream-v0 (Base/Instruct): `model(x, attention_mask, position_ids).logits`, trained AR-style.

    Dream's logits[:, i] predict token i + 1, so they are shifted right by one (position 0 keeps its
    own) and the rest of the toolkit never needs to know. With left padding, the mask becomes Dream's
    bool (B, 1, L, L) form and positions count real tokens only, as Dream's `diffusion_generate` does.
    """

    markers = ("dream",)
    MASK, PAD = 151666, 151643

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
                raise BadInput(f"{path} has no tokenizer and GPT-2's could not be loaded: {_first_line(e)}") from None

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
    EOS is the tokenizer's EOS, else its [SEP].
    """

    markers = ("formaskedlm",)
    auto_class = "AutoModelForMaskedLM"

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

    def forward(self, ids, attention_mask=None):
        logits = self.module(input_ids=ids, attention_mask=attention_mask).logits  # (B, L, V)
        if self.mask_id is not None:
            logits = logits.index_fill(-1, torch.tensor([self.mask_id], device=logits.device), NEG_INF)
        return logits
