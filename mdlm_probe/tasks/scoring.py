"""Answer extraction and scoring: math answers (GSM8K, the synthetic task) and multiple choice (GPQA).

strict: `#### N` or lm-eval's "The answer is N"; flexible: the last number in the text. Numbers are
normalised (commas, `$`, trailing `.0`/`.00`) before comparison. `correct` is strict when strict finds
an answer, else flexible (docs/conventions.md).
"""

from __future__ import annotations

import re
from typing import Sequence

_NUM = r"-?[$]?\s?\d[\d,]*(?:\.\d+)?"
STRICT_PATTERNS = [
    re.compile(r"####\s*(" + _NUM + ")"),
    re.compile(r"[Tt]he answer is:?\s*\$?\s*(" + _NUM + ")"),
]
FLEX = re.compile(_NUM)


def normalize_number(s: str | None) -> str | None:
    """'$1,200.00' -> '1200'; '-5' -> '-5'; '7.50' -> '7.5'; None stays None."""
    if s is None:
        return None
    s = s.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    if not s or s in ("-",):
        return None
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s.startswith("-"):
        body = s[1:].lstrip("0") or "0"
        return "-" + body if body != "0" else "0"
    return s.lstrip("0") or "0"


def extract_strict(text: str) -> str | None:
    for pat in STRICT_PATTERNS:
        m = pat.findall(text)
        if m:
            return normalize_number(m[-1])
    return None


def extract_flexible(text: str) -> str | None:
    m = FLEX.findall(text)
    return normalize_number(m[-1]) if m else None


def verdict_fields(strict: str | None, flex: str | None, ref: str | None) -> dict:
    """Record fields from a strict and a flexible extraction: strict when it found an answer, else flexible."""
    extracted = strict if strict is not None else flex
    correct = None if ref is None else (extracted is not None and extracted == ref)
    verdict = "no_answer" if extracted is None else ("correct" if correct else "wrong")
    return {
        "extracted": extracted,
        "correct": correct,
        "verdict": verdict,
        "scores": {
            "strict": None if ref is None else strict == ref,
            "flexible": None if ref is None else flex == ref,
            "strict_found": strict is not None,
        },
    }


def score_math(text: str, reference_answer: str | None) -> dict:
    """Both GSM8K scores plus the scored verdict."""
    ref = normalize_number(reference_answer)
    strict, flex = extract_strict(text), extract_flexible(text)
    return verdict_fields(strict, flex, ref)


# ----------------------------------------------------------------------------------------- stop strings
def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """The text before the first stop string (lm-eval's `until`): a fixed-length diffusion canvas often
    runs on into a made-up next "Question:", whose numbers must not be scored."""
    cut = len(text)
    for s in stops:
        i = text.find(s) if s else -1  # an empty stop string stops nothing
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


# ----------------------------------------------------------------------------------------- multiple choice
# strict: "The answer is (B)" / "answer is B" / "Answer: B"; flexible: the last "(B)"; else a bare letter
# that opens the response (the prompt ends in "Answer:"), but not the article in "A good idea ...".
_STRICT_CHOICE = re.compile(r"(?i:answer)\s*(?:is|:)\s*:?\s*\(?([A-D])(?![A-Za-z])")
_PAREN_CHOICE = re.compile(r"\(([A-D])\)")
_LEADING_CHOICE = re.compile(r"^\s*\(?([A-D])(?:\)|\.|:|,|\s*$|\s*\n)")


def extract_choice_strict(text: str) -> str | None:
    m = _STRICT_CHOICE.findall(text)
    return m[-1] if m else None


def extract_choice_flexible(text: str) -> str | None:
    m = _PAREN_CHOICE.findall(text)
    if m:
        return m[-1]
    m = _LEADING_CHOICE.match(text)
    return m.group(1) if m else None


def score_choice(text: str, reference_letter: str | None) -> dict:
    """GPQA-style scoring: the letter chosen vs the (shuffled) correct letter."""
    ref = reference_letter.strip("() ").upper() if reference_letter else None
    strict, flex = extract_choice_strict(text), extract_choice_flexible(text)
    return verdict_fields(strict, flex, ref)
