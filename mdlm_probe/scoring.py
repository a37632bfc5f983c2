"""Answer extraction and scoring for math answers (GSM8K and the synthetic task).

strict: `#### N` or lm-eval's "The answer is N"; flexible: the last number in the text. Numbers are
normalised (commas, `$`, trailing `.0`/`.00`) before comparison. `correct` is strict when strict finds
an answer, else flexible (CONVENTIONS.md).
"""

from __future__ import annotations

import re

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


def score_math(text: str, reference_answer: str | None) -> dict:
    """Both GSM8K scores plus the scored verdict."""
    ref = normalize_number(reference_answer)
    strict, flex = extract_strict(text), extract_flexible(text)
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
