"""Which references a tokenizer puts at risk of the standard CTC collapse: adjacent identical tokens.

The standard collapse merges repeats before deleting `<slack>`, so a model trained with it must write a
`<slack>` between two equal adjacent tokens or lose one of them ("100" -> "10" with one digit per token). How
often a benchmark's answers contain such a pair depends on the tokenizer: one digit per token (the character
model, Qwen2/Dream) makes every "00" a pair; grouping digits in threes (LLaMA-3 style) makes "1,000,000"
into "1" "," "000" "," "000" (no pair: the comma sits between) but 1000000 into "100" "000" "0" (none) and
100100 into "100" "100" (one). `token_risk` measures it on references, with no model.

Kinds of pair, by the text of the repeated token and where it sits:
    trailing-zeros   a token of zeros only, both copies inside the trailing zeros of one number
    other-digits     any other pair of digit tokens (e.g. "11" in 112, "000" "000" inside a number)
    other            words, letters, punctuation, whitespace
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from mdlm_probe.core.checkpoints import folder_tokenizer, resolve
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.hub import go_offline, hub_reachable
from mdlm_probe.core.records import iter_jsonl
from mdlm_probe.core.stats import wilson
from mdlm_probe.tasks.benchmarks import get_benchmark

KINDS = ("trailing-zeros", "other-digits", "other")
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?!\d)|\d+")  # 1,000,000 is one number, its commas inside


@dataclass
class Pair:
    index: int  # the first token of the pair
    token: str
    kind: str
    start: int  # character span of the two tokens in the text
    end: int


def offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids and their character spans, without special tokens."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)  # no length warning
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def trailing_zero_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of each number's trailing zeros, group commas included ("1200" -> "00", "80,000" ->
    "0,000"). A number of zeros only has none (there is no leading digit to keep)."""
    spans = []
    for m in NUMBER.finditer(text):
        num = m.group()
        last = max(num.rfind(d) for d in "123456789")
        if 0 <= last < len(num) - 1:
            spans.append((m.start() + last + 1, m.end()))
    return spans


def mergeable_pairs(ids: Sequence[int], spans: Sequence[tuple[int, int]], text: str) -> list[Pair]:
    """Every adjacent pair of identical token ids, classified (see the module's docstring)."""
    zeros = trailing_zero_spans(text)
    pairs = []
    for i in range(len(ids) - 1):
        if ids[i] != ids[i + 1]:
            continue
        (s0, e0), (_, e1) = spans[i], spans[i + 1]
        piece = text[s0:e0]
        if piece and set(piece) == {"0"} and any(a <= s0 and e1 <= b for a, b in zeros):
            kind = "trailing-zeros"
        elif piece.isdigit():
            kind = "other-digits"
        else:
            kind = "other"
        pairs.append(Pair(index=i, token=piece, kind=kind, start=s0, end=e1))
    return pairs


@dataclass
class Risk:
    """At-risk shares of one tokenizer on one set of texts."""

    tokenizer: str
    source: str
    n: int
    at_risk: int  # texts with at least one mergeable pair
    numbers_at_risk: int  # texts with at least one pair of digit tokens (trailing zeros or other digits)
    by_kind: dict[str, int]  # texts with at least one pair of the kind
    pairs: dict[str, int]  # pairs of each kind, summed over texts
    examples: dict[str, list[str]] = field(default_factory=dict)  # a few texts per kind, the pair in [brackets]

    def row(self) -> dict[str, Any]:
        lo, hi = wilson(self.at_risk, self.n)
        nlo, nhi = wilson(self.numbers_at_risk, self.n)
        share = lambda k: round(k / self.n, 4) if self.n else None  # noqa: E731
        out = {"tokenizer": self.tokenizer, "source": self.source, "n": self.n,
               "at_risk": share(self.at_risk), "ci_low": round(lo, 4), "ci_high": round(hi, 4),
               "numbers_at_risk": share(self.numbers_at_risk), "numbers_ci_low": round(nlo, 4),
               "numbers_ci_high": round(nhi, 4)}
        for k in KINDS:
            out[f"{k}_share"] = share(self.by_kind[k])
            out[f"{k}_pairs"] = self.pairs[k]
        return out


def _excerpt(text: str, p: Pair, width: int = 24) -> str:
    a, b = max(0, p.start - width), min(len(text), p.end + width)
    return (("…" if a else "") + text[a:p.start] + "[" + text[p.start:p.end] + "]" + text[p.end:b]
            + ("…" if b < len(text) else "")).replace("\n", "⏎")


def token_risk(tokenizer, texts: Iterable[str], *, name: str, source: str, examples: int = 3) -> Risk:
    """Count, over `texts`, those with adjacent identical tokens, by kind, keeping a few examples."""
    n = at_risk = numbers = 0
    by_kind, pairs, ex = dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0), {k: [] for k in KINDS}
    for text in texts:
        n += 1
        ids, spans = offsets(tokenizer, text)
        found = mergeable_pairs(ids, spans, text)
        at_risk += bool(found)
        numbers += any(p.kind != "other" for p in found)
        for k in KINDS:
            of_kind = [p for p in found if p.kind == k]
            pairs[k] += len(of_kind)
            by_kind[k] += bool(of_kind)
            if of_kind and len(ex[k]) < examples:
                ex[k].append(_excerpt(text, of_kind[0]))
    return Risk(tokenizer=name, source=source, n=n, at_risk=at_risk, numbers_at_risk=numbers, by_kind=by_kind,
                pairs=pairs, examples=ex)


# ----------------------------------------------------------------------------------------- inputs
def load_tokenizer(name: str):
    """A tokenizer folder, or a checkpoint (shipped name or folder) whose tokenizer is read; nothing else loads."""
    try:
        path = resolve(name)
    except BadInput:
        path = None
    folder = path if path is not None else name
    if path is None and not Path(name).exists() and not hub_reachable():
        go_offline()  # a Hub name while offline: fail at once instead of sitting through the client's retries
    try:
        return folder_tokenizer(folder)
    except (OSError, ValueError) as e:
        raise BadInput(f"no tokenizer in {name!r}: {str(e).splitlines()[0]}") from None


def reference_texts(benchmark: str | None, data_file: str | None = None, data_dir: str | None = None,
                    field_name: str = "reference", limit: int | None = None) -> tuple[list[str], str]:
    """The texts to measure and where they came from: a benchmark's references (`reference`: the worked
    solution; `answer`: the final answer), or a JSONL file's `field_name` when no benchmark is named."""
    if benchmark is None:
        if data_file is None:
            raise BadInput("name a benchmark or pass --data-file FILE.jsonl (with --field)")
        texts = []
        for line, obj in iter_jsonl(data_file, "text file"):
            if not isinstance(obj, dict) or not isinstance(obj.get(field_name), str):
                raise BadInput(f"{data_file}:{line}: no text field {field_name!r} (choose one with --field)")
            texts.append(obj[field_name])
        source = str(data_file)
    else:
        bench = get_benchmark(benchmark, data_file=data_file, data_dir=data_dir)
        samples = bench.load()
        if field_name not in ("reference", "answer"):
            raise BadInput(f"--field {field_name!r}: a benchmark gives 'reference' or 'answer'")
        texts = [s.reference if field_name == "reference" else (s.reference_answer or "") for s in samples]
        source = f"{benchmark} {field_name}s ({bench.data_source()})"
    return texts[:limit] if limit else texts, source
