"""A seeded generator of short GSM8K-style word problems.

Prompts stay under 64 characters (cheap CPU training); solutions are equations ending in `#### N`, e.g.
`12*30=360 360-80=280 #### 280`. Most quantities are multiples of 10 or 100, so most answers end in zeros:
exactly the numbers on which a standard CTC collapse can lose a digit ("100" -> "10").

The held-out split is fixed by a hash of the question text, so training (which rejects those questions)
never sees it, whatever the seed.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache

NAMES = ["Ann", "Bob", "Tom", "Sue", "Max", "Eva", "Jo", "Kim", "Lee", "Ray", "Ali", "Mia"]
ITEMS = ["pen", "cup", "egg", "toy", "card", "book", "nut", "bead", "coin", "shell", "stamp", "apple"]
HELDOUT_MODULUS = 8  # one question in 8 (by hash) belongs to the held-out split
HELDOUT_SIZE = 1000
HELDOUT_SEED = 20260128
RESPONSE_LENGTH = 48  # the tiny models' canvas: every solution + EOS (+ CTC separators) fits


@dataclass(frozen=True)
class Problem:
    question: str
    solution: str  # worked equations ending in "#### N"
    answer: str

    @property
    def id(self) -> str:
        return hashlib.sha1(self.question.encode()).hexdigest()[:10]


def is_heldout(question: str) -> bool:
    return int(hashlib.sha1(question.encode()).hexdigest(), 16) % HELDOUT_MODULUS == 0


def _round_qty(rng: random.Random) -> int:
    """A quantity that is usually a multiple of 10 or 100."""
    r = rng.random()
    if r < 0.45:
        return 10 * rng.randint(1, 30)
    if r < 0.85:
        return 100 * rng.randint(1, 9)
    return rng.randint(2, 99)


def _small(rng: random.Random) -> int:
    return rng.randint(2, 12)


def make_problem(rng: random.Random) -> Problem:
    """Draw one problem; every template keeps answers positive integers."""
    n, item = rng.choice(NAMES), rng.choice(ITEMS)
    kind = rng.choice(["add", "sub", "mul", "div", "mul-sub", "mul-add", "add-sub", "div-add"])
    if kind == "add":
        a, b = _round_qty(rng), _round_qty(rng)
        q = f"{n} has {a} {item}s and gets {b} more. How many now?"
        steps = [f"{a}+{b}={a + b}"]
        ans = a + b
    elif kind == "sub":
        a, b = sorted([_round_qty(rng), _round_qty(rng)], reverse=True)
        if a == b:
            a += 10
        q = f"{n} has {a} {item}s and gives away {b}. How many left?"
        steps = [f"{a}-{b}={a - b}"]
        ans = a - b
    elif kind == "mul":
        a, b = _small(rng), _round_qty(rng)
        q = f"{n} buys {a} packs of {b} {item}s. How many {item}s?"
        steps = [f"{a}*{b}={a * b}"]
        ans = a * b
    elif kind == "div":
        b, per = _small(rng), _round_qty(rng)
        a = b * per
        q = f"{n} splits {a} {item}s into {b} bags. How many per bag?"
        steps = [f"{a}/{b}={per}"]
        ans = per
    elif kind == "mul-sub":
        a, b = _small(rng), _round_qty(rng)
        p = a * b
        c = rng.choice([10 * rng.randint(1, max(1, p // 10 - 1)), rng.randint(1, p - 1)]) if p > 10 else 1
        q = f"{n} buys {a} packs of {b} {item}s, uses {c}. How many left?"
        steps = [f"{a}*{b}={p}", f"{p}-{c}={p - c}"]
        ans = p - c
    elif kind == "mul-add":
        a, b, c = _small(rng), _round_qty(rng), _round_qty(rng)
        p = a * b
        q = f"{n} has {a} bags of {b} {item}s and {c} more. Total?"
        steps = [f"{a}*{b}={p}", f"{p}+{c}={p + c}"]
        ans = p + c
    elif kind == "add-sub":
        a, b = _round_qty(rng), _round_qty(rng)
        c = rng.randint(1, a + b - 1)
        if rng.random() < 0.7:
            c = max(10, (c // 10) * 10)
        q = f"{n} has {a} {item}s, gets {b}, loses {c}. How many now?"
        steps = [f"{a}+{b}={a + b}", f"{a + b}-{c}={a + b - c}"]
        ans = a + b - c
    else:  # div-add
        b, per, c = _small(rng), _round_qty(rng), _round_qty(rng)
        a = b * per
        q = f"{n} splits {a} {item}s in {b} bags, adds {c} to one. Bag?"
        steps = [f"{a}/{b}={per}", f"{per}+{c}={per + c}"]
        ans = per + c
    return Problem(question=q, solution=" ".join(steps) + f" #### {ans}", answer=str(ans))


def fits(p: Problem, length: int = RESPONSE_LENGTH) -> bool:
    """Solution + EOS + one `<slack>` between each equal adjacent pair fits the canvas (see objectives)."""
    s = p.solution
    return len(s) + 1 + sum(a == b for a, b in zip(s, s[1:])) <= length


def sample_train(rng: random.Random) -> Problem:
    """One training problem: never from the held-out split, always fitting the canvas."""
    while True:
        p = make_problem(rng)
        if fits(p) and not is_heldout(p.question):
            return p


@lru_cache(maxsize=4)
def heldout(n: int = HELDOUT_SIZE) -> tuple[Problem, ...]:
    """The fixed held-out split: the first `n` distinct held-out questions of a fixed seed."""
    rng, seen, out = random.Random(HELDOUT_SEED), set(), []
    while len(out) < n:
        p = make_problem(rng)
        if fits(p) and is_heldout(p.question) and p.question not in seen:
            seen.add(p.question)
            out.append(p)
    return tuple(out)


PROMPT_FORMAT = "{prompt}\n"  # recorded in a trained checkpoint's sidecar (`prompt_format`)


def format_prompt(question: str) -> str:
    """The text the tiny models see before the response."""
    return question + "\n"
