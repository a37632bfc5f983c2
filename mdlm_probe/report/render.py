"""Showing tokens and differences to a person: the glyphs for special tokens (one legend for the terminal
and the HTML report) and the diff of two texts or token lists as marked segments.

Both `mdlm-probe shift --show` (rich, in the terminal) and the report (HTML) render from these, so a
glyph means the same thing wherever it appears.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, Sequence

from mdlm_probe.core.checkpoints import folder_tokenizer, read_sidecar, resolve

# kind -> glyph for the special tokens (docs/conventions.md, "Glyphs"); LEGEND explains every glyph drawn.
GLYPHS = {"mask": "░", "slack": "·", "eos": "⊣", "pad": "∅"}
NEWLINE = "↵"  # a newline inside a token
LEGEND = (("░", "mask"), ("·", "<slack>"), ("⊣", "EOS"), ("∅", "padding"), ("↵", "newline"))


def legend_text() -> str:
    """The glyph legend as one line: "░ mask  · <slack>  ⊣ EOS  ∅ padding  ↵ newline"."""
    return "  ".join(f"{g} {what}" for g, what in LEGEND)


def special_kinds(mask_id: int | None = None, slack_id: int | None = None, eos_id: int | None = None,
                  pad_id: int | None = None) -> dict[int, str]:
    """Token id -> kind ("mask", "slack", "eos", "pad"). When two roles share an id the earlier one wins
    (a tokenizer whose pad token is its EOS shows EOS)."""
    out: dict[int, str] = {}
    for i, kind in ((mask_id, "mask"), (slack_id, "slack"), (eos_id, "eos"), (pad_id, "pad")):
        if i is not None:
            out.setdefault(int(i), kind)
    return out


def token_glyphs(ids: Sequence[int], decode: Callable[[int], str] | None,
                 special: dict[int, str]) -> list[tuple[str, str]]:
    """[(glyph, kind)] per token, kind "" for an ordinary one. Special tokens show their glyph; others
    their text with spaces as thin spaces (a cell stays narrow but the gap shows) and newlines as ↵;
    without a tokenizer (`decode` None), or when it decodes to nothing, a token shows as `#id`."""
    out = []
    for t in ids:
        t = int(t)
        if t in special:
            out.append((GLYPHS[special[t]], special[t]))
        elif decode is not None:
            out.append((decode(t).replace(" ", "\u2009").replace("\n", NEWLINE) or f"#{t}", ""))
        else:
            out.append((f"#{t}", ""))
    return out


def model_glyphs(model, ids: Sequence[int]) -> list[str]:
    """Glyphs of `ids` for a loaded model (terminal use)."""
    special = special_kinds(model.mask_id, model.slack_id, model.eos_id, getattr(model, "pad_id", None))
    return [g for g, _ in token_glyphs(ids, lambda t: model.tokenizer.decode([t], skip_special_tokens=False),
                                       special)]


class TokenText:
    """Per-position glyphs for a checkpoint named in records, from its local tokenizer and sidecar (never
    the network). A checkpoint that cannot be loaded shows token ids instead."""

    def __init__(self):
        self._cache: dict[str, Any] = {}

    def _load(self, ckpt: str):
        if ckpt not in self._cache:
            tok, side = None, {}
            try:
                path = resolve(ckpt)
                if isinstance(path, Path):
                    tok = folder_tokenizer(path, local_files_only=True)
                    side = read_sidecar(path) or {}
            except Exception:  # noqa: BLE001 - a missing tokenizer only costs the token glyphs
                tok = None
            self._cache[ckpt] = (tok, side)
        return self._cache[ckpt]

    def __call__(self, ckpt: str, ids: Sequence[int]) -> list[tuple[str, str]]:
        """[(glyph, kind)] with kind "", "mask", "slack", "eos" or "pad"."""
        tok, side = self._load(ckpt)
        special = special_kinds(side.get("mask_id"), side.get("slack_id"), side.get("eos_id"),
                                None if tok is None else tok.pad_token_id)
        if tok is not None and tok.mask_token_id is not None:
            special.setdefault(int(tok.mask_token_id), "mask")
        decode = None if tok is None else (lambda t: tok.decode([t], skip_special_tokens=False))
        return token_glyphs(ids, decode, special)


def diff_segments(a: str | Sequence[str], b: str | Sequence[str],
                  ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Diff of a against b (two strings, or two lists of token strings): segments for each side,
    classes "" (shared), "del" (only in a), "ins" (only in b)."""
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append({"text": "".join(a[i1:i2]), "cls": ""})
            right.append({"text": "".join(b[j1:j2]), "cls": ""})
            continue
        if i2 > i1:
            left.append({"text": "".join(a[i1:i2]), "cls": "del"})
        if j2 > j1:
            right.append({"text": "".join(b[j1:j2]), "cls": "ins"})
    return left, right
