"""The two collapse maps from a raw canvas to text.

`surface` only deletes `<slack>`: "1<slack>00" -> "100".
`ctc` is the standard CTC map: merge consecutive repeats, then delete `<slack>`: "100" -> "10",
while "10<slack>0" -> "100". This is why CTC-trained models can drop trailing zeros.
Both also cut at the first EOS and drop padding (docs/conventions.md, Sample record).
"""

from __future__ import annotations

from typing import Sequence

COLLAPSES = ("surface", "ctc")


def _until_eos(ids: Sequence[int], eos_ids: Sequence[int]) -> list[int]:
    out = []
    for t in ids:
        if t in eos_ids:
            break
        out.append(int(t))
    return out


def collapse_ids(ids: Sequence[int], how: str, slack_id: int | None, eos_ids: Sequence[int] = (),
                 drop_ids: Sequence[int] = ()) -> list[int]:
    """Apply a collapse map to token ids. `drop_ids` (padding, stray masks) are removed after merging."""
    if how not in COLLAPSES:
        raise ValueError(f"unknown collapse {how!r}; expected one of {COLLAPSES}")
    ids = _until_eos(ids, eos_ids)
    if how == "ctc":
        ids = [t for i, t in enumerate(ids) if i == 0 or t != ids[i - 1]]
    return [t for t in ids if t != slack_id and t not in drop_ids]


def collapse_all(ids: Sequence[int], tokenizer, slack_id: int | None, eos_ids: Sequence[int],
                 drop_ids: Sequence[int] = ()) -> dict[str, str]:
    """Both collapse maps, decoded: {"surface": text, "ctc": text}."""
    return {how: tokenizer.decode(collapse_ids(ids, how, slack_id, eos_ids, drop_ids), skip_special_tokens=False)
            for how in COLLAPSES}
