"""From the scored text back to canvas positions, so a character (a digit, a miner's span) has a commit step.

A record keeps `output_ids` (every canvas position) and `text` (read through a collapse map: cut at the first
EOS, `<slack>` and special tokens dropped; the ctc map also merges runs of one token). Re-applying the map while
keeping indices, and decoding each kept token alone, gives for every character of `text` the canvas positions
that wrote it (a merged run: several). When the pieces do not join up to `text` (a byte-level tokenizer that
splits a character over tokens) the record is marked unaligned and only its order statistics are computed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core.checkpoints import folder_tokenizer, read_sidecar, resolve


@dataclass
class Vocab:
    """What alignment needs of a checkpoint: each id's text, and the ids the collapse maps treat specially."""

    piece: Any  # id -> text of that token alone (a callable), or None when no tokenizer could be loaded
    eos_ids: set[int]
    slack_id: int | None
    drop_ids: set[int] = field(default_factory=set)

    def text(self, i: int) -> str:
        return self.piece(i)


_CACHE: dict[str, Vocab | None] = {}


def load_vocab(config: dict[str, Any]) -> Vocab | None:
    """The run's checkpoint tokenizer and special ids (sidecar first); None when it cannot be loaded."""
    where = config.get("checkpoint") or config.get("ckpt")
    if isinstance(where, list):
        where = where[0] if where else None
    if not where:
        return None
    key = str(where)
    if key not in _CACHE:
        _CACHE[key] = _load(key)
    return _CACHE[key]


def _load(where: str) -> Vocab | None:
    try:
        path = resolve(where)
        tok = folder_tokenizer(path)
    except Exception as e:  # a Hub id offline, a missing folder: order statistics still work
        warnings.warn(f"no tokenizer for {where} ({type(e).__name__}): digits and artifacts are not aligned",
                      stacklevel=2)
        return None
    side = (read_sidecar(path) if Path(str(path)).is_dir() else None) or {}
    eos = {i for i in (side.get("eos_id"), tok.eos_token_id) if isinstance(i, int)}
    for name in ("<|eot_id|>", "<|im_end|>", "<|endoftext|>"):
        i = tok.convert_tokens_to_ids(name) if name in tok.get_vocab() else None
        if isinstance(i, int):
            eos.add(i)
    slack = side.get("slack_id")
    drop = set(tok.all_special_ids) - eos - {slack}
    memo: dict[int, str] = {}

    def piece(i: int) -> str:
        if i not in memo:
            memo[i] = tok.decode([i], skip_special_tokens=False)
        return memo[i]
    return Vocab(piece=piece, eos_ids=eos, slack_id=slack if isinstance(slack, int) else None, drop_ids=drop)


@dataclass
class CanvasMap:
    """For each character of the scored text, the canvas positions (of the response) that wrote it."""

    chars: list[list[int]]  # chars[c] = positions, in order (one, or a merged run)
    first_eos: int | None  # position of the first EOS in the canvas, None if there is none
    content: list[int]  # positions that wrote text (before the first EOS, not slack or special)
    aligned: bool

    def first(self, c: int) -> int:
        return self.chars[c][0]

    def last(self, c: int) -> int:
        return self.chars[c][-1]


def canvas_map(output_ids: Sequence[int], text: str, collapse: str, vocab: Vocab) -> CanvasMap:
    """Re-apply the collapse map keeping positions (see the module docstring)."""
    ids = list(output_ids)
    eos = next((i for i, t in enumerate(ids) if t in vocab.eos_ids), None)
    upto = ids[:eos] if eos is not None else ids
    runs: list[list[int]] = []  # kept tokens, each with the positions it stands for
    for p, t in enumerate(upto):
        if collapse == "ctc" and p > 0 and upto[p - 1] == t:
            runs[-1].append(p)  # merged into the run that holds p - 1
            continue
        runs.append([p])
    kept = [r for r in runs if ids[r[0]] != vocab.slack_id and ids[r[0]] not in vocab.drop_ids]
    chars: list[list[int]] = []
    for r in kept:
        chars += [list(r)] * len(vocab.text(ids[r[0]]))
    joined = "".join(vocab.text(ids[r[0]]) for r in kept)
    content = [p for r in kept for p in r]
    return CanvasMap(chars=chars, first_eos=eos, content=content, aligned=joined == text)
