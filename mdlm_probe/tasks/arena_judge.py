"""Judging as Arena-Hard-Auto judges: its prompts (read from the user's own config at run time, never stored
here), its five-way verdicts, its two games per question, over any OpenAI-compatible chat endpoint.

Two versions of Arena-Hard-Auto are followed (docs/arena_hard.md pins both commits):
- "legacy" (3071ef95, the v0.1 leaderboards): `config/judge_config.yaml` holds `system_prompt`, a
  `prompt_template` list with `{question_1}`, `{answer_1}`, `{answer_2}`, and one `regex_pattern`. A verdict
  counts only when every match agrees; when there is none the judge is asked once more to finish.
- "main" (196f6b82): `config/arena-hard-v0.1.yaml` (or v2.0) holds `prompt_template` with `{QUESTION}`,
  `{ANSWER_A}`, `{ANSWER_B}` and `regex_patterns`; the system prompt lives in its `utils/judge_utils.py`, read
  here with `ast` (nothing is executed), or given with `--judge-system-file`. The last match of the first
  pattern that matches the upper-cased text is the verdict.

Game 1: A = baseline, B = model. Game 2: A = model, B = baseline. A game's outcome is a label (e.g. "B>>A"), a
judge answer without a verdict (label None), or a failed call (an error, no answer): never a guess.
"""

from __future__ import annotations

import ast
import hashlib
import random
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from mdlm_probe.core.exceptions import BadInput, first_line
from mdlm_probe.tasks.chat_http import chat_endpoint, post_chat

# sha256 of the prompts of the pinned commits (docs/arena_hard.md): the run card says whether the user's match.
KNOWN_SHA256 = {
    "03f68010febd7a6405102ef882b4dd5a9700c56b2e1ff286d3b38f5d3a929bbf": "arena-hard system prompt (v0.1 / hard_prompt)",
    "171489efbca7f19fb520e1b3c23783c76af7c723e770fe897a55f391684aa358": "arena-hard creative-writing system prompt",
    "80fb20ab2eaae6d38a19f707f3f051f0456bcb977b0086bebe15f9bd23ce45f8": "arena-hard prompt template (main)",
    "b0260904bc964e0d07d20581309c53fce4879159080fee42d8c91f8a80c48df4": "arena-hard prompt template (legacy)",
}
LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
# Our own wording of the legacy follow-up when a judgment ends without a verdict.
FINISH = "Please finish your judgment with a final verdict label."


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------------- verdicts
def parse_main(text: str, patterns: list[str]) -> str | None:
    """Main's rule: upper-case, first pattern with a match, its last match."""
    import re
    for pat in patterns:
        found = [m for m in re.findall(pat, text.upper()) if m != ""]
        if found:
            return found[-1].strip("\n")
    return None


def parse_legacy(text: str, pattern: str) -> tuple[str | None, bool]:
    """Legacy's rule: (label, ask again?). One distinct match: it; none: ask again; several: no verdict."""
    import re
    found = [m for m in re.findall(pattern, text) if m != ""]
    if len(set(found)) == 1:
        return found[0].strip("\n"), False
    return None, not found


# Model-side score rows of one game (main's load_judgments, weight 3), from the label seen with A = first answer.
A_SIDE = {"A>B": [1], "A>>B": [1, 1, 1], "A=B": [0.5], "A<<B": [0, 0, 0], "A<B": [0], "B>A": [0], "B>>A": [0, 0, 0],
          "B=A": [0.5], "B<<A": [1, 1, 1], "B<A": [1]}
# Legacy battles of one game 1 label (A = baseline): (outcome for the model, copies); game 2 mirrors it.
LEGACY_G1 = {"A>B": (0.0, 1), "A>>B": (0.0, 3), "A=B": (0.5, 1), "B>A": (1.0, 1), "B>>A": (1.0, 3)}


def main_rows(label1: str | None, label2: str | None) -> list[float] | None:
    """Main's model-side rows for a question: game 2's, then game 1's complemented; None drops the question
    (either game without a label). A label main cannot score (e.g. "A") also drops it (main would crash)."""
    if label1 not in A_SIDE or label2 not in A_SIDE:
        return None
    return [float(s) for s in A_SIDE[label2]] + [1.0 - s for s in A_SIDE[label1]]


def legacy_rows(label: str | None, game: int) -> list[float]:
    """Legacy battle rows (model's outcome) of one game; an unknown or missing label drops that game only."""
    if label not in LEGACY_G1:
        return []
    won, k = LEGACY_G1[label]
    return [won if game == 1 else 1.0 - won] * k


# ----------------------------------------------------------------------------------------- the config
@dataclass
class JudgeConfig:
    version: str  # "legacy" | "main"
    system_prompt: str
    template: str
    patterns: list[str]
    temperature: float
    max_tokens: int
    judge_model: str | None  # the config's judge name (the served model may differ: --judge-model)
    source: str
    attempts: int = 1  # legacy: number_of_judgment_attempts
    system_by_category: dict[str, str] = field(default_factory=dict)

    def system_for(self, category: str | None) -> str:
        return self.system_by_category.get(category or "", self.system_prompt)

    def user_message(self, question: str, a: str, b: str) -> str:
        keys = ({"question_1": question, "answer_1": a, "answer_2": b} if self.version == "legacy"
                else {"QUESTION": question, "ANSWER_A": a, "ANSWER_B": b})
        return self.template.format(**keys)

    def parse(self, text: str) -> tuple[str | None, bool]:
        """(label or None, ask again?)."""
        if self.version == "legacy":
            return parse_legacy(text, self.patterns[0])
        return parse_main(text, self.patterns), False

    def card(self) -> dict[str, Any]:
        prompts = {"system_prompt": sha256(self.system_prompt), "template": sha256(self.template),
                   **{f"system_prompt[{c}]": sha256(p) for c, p in sorted(self.system_by_category.items())}}
        return {"config": self.source, "version": self.version, "config_judge_model": self.judge_model,
                "temperature": self.temperature, "max_tokens": self.max_tokens, "patterns": self.patterns,
                "sha256": prompts, "known": {k: KNOWN_SHA256.get(h) for k, h in prompts.items()}}


def _read_yaml(path: Path) -> dict:
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is a dependency
        raise BadInput("reading an Arena-Hard config needs PyYAML: pip install pyyaml") from None
    if not path.is_file():
        raise BadInput(f"--judge-config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise BadInput(f"--judge-config {path}: not valid YAML ({first_line(e)})") from None
    if not isinstance(data, dict):
        raise BadInput(f"--judge-config {path}: expected an Arena-Hard-Auto judge config (a YAML mapping)")
    return data


def module_strings(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """From a judge_utils.py, without running it: module-level string constants, and JUDGE_SETTINGS'
    category -> system prompt where its values name those constants or are literals."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError) as e:
        raise BadInput(f"{path}: cannot read the judge system prompt from it ({first_line(e)})") from None
    consts: dict[str, str] = {}
    settings: dict[str, str] = {}

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return consts.get(node.id)
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values) if k is not None}
        try:
            return ast.literal_eval(node)
        except ValueError:
            return None

    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, v = node.targets[0].id, value(node.value)
            if isinstance(v, str):
                consts[name] = v
            elif name == "JUDGE_SETTINGS" and isinstance(v, dict):
                settings = {c: s["system_prompt"] for c, s in v.items()
                            if isinstance(s, dict) and isinstance(s.get("system_prompt"), str)}
    return consts, settings


def load_judge_config(path: str | Path, system_file: str | Path | None = None) -> JudgeConfig:
    """An Arena-Hard-Auto judge config in either version's layout -> JudgeConfig (one BadInput line if not)."""
    path = Path(path)
    data = _read_yaml(path)
    tpl = data.get("prompt_template")
    common = dict(temperature=float(data.get("temperature") or 0.0), max_tokens=int(data.get("max_tokens") or 4096),
                  judge_model=data.get("judge_model"), source=str(path))
    if isinstance(tpl, list):  # legacy: everything is in the YAML
        if len(tpl) != 1 or not isinstance(tpl[0], str) or "{answer_2}" not in tpl[0]:
            raise BadInput(f"--judge-config {path}: a legacy prompt_template must be one single-turn string "
                           "with {question_1}, {answer_1}, {answer_2}")
        system = Path(system_file).read_text(encoding="utf-8") if system_file else data.get("system_prompt")
        if not isinstance(system, str) or not isinstance(data.get("regex_pattern"), str):
            raise BadInput(f"--judge-config {path}: a legacy config needs system_prompt and regex_pattern")
        return JudgeConfig("legacy", system, tpl[0], [data["regex_pattern"]],
                           attempts=int(data.get("number_of_judgment_attempts") or 1), **common)
    if not isinstance(tpl, str) or "{ANSWER_B}" not in tpl or not isinstance(data.get("regex_patterns"), list):
        raise BadInput(f"--judge-config {path}: not an Arena-Hard-Auto judge config (expected prompt_template with "
                       "{QUESTION}, {ANSWER_A}, {ANSWER_B} and regex_patterns, or the legacy judge_config.yaml)")
    by_cat: dict[str, str] = {}
    if system_file:
        if not Path(system_file).is_file():
            raise BadInput(f"--judge-system-file {system_file}: no such file")
        system = Path(system_file).read_text(encoding="utf-8")
    else:
        utils = path.resolve().parent.parent / "utils" / "judge_utils.py"
        if not utils.is_file():
            raise BadInput(f"--judge-config {path}: main's configs keep the system prompt in utils/judge_utils.py, "
                           f"not found at {utils}; pass --judge-system-file")
        consts, by_cat = module_strings(utils)
        system = consts.get("OG_ARENA_HARD_PROMPT") or next(iter(by_cat.values()), None)
        if not system:
            raise BadInput(f"{utils}: no OG_ARENA_HARD_PROMPT or JUDGE_SETTINGS in it; pass --judge-system-file")
    return JudgeConfig("main", system, tpl, [str(p) for p in data["regex_patterns"]],
                       system_by_category=by_cat, **common)


# ----------------------------------------------------------------------------------------- the endpoint
@dataclass
class Endpoint:
    """An OpenAI-compatible chat-completions endpoint; transient failures are retried with backoff."""
    url: str
    model: str
    api_key: str | None = None
    timeout: float = 600.0
    retries: int = 3
    backoff: float = 2.0  # seconds before the first retry, doubled each time (with jitter)
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.endpoint = chat_endpoint(self.url)
        if not self.model:
            raise BadInput("--judge-model is required (the model name the server serves)")

    def reachable(self, timeout: float = 5.0) -> bool:
        """Whether anything listens at the endpoint's host and port (behind a proxy: assumed, urllib goes through it)."""
        u = urlparse(self.endpoint)
        if urllib.request.getproxies().get(u.scheme) and not urllib.request.proxy_bypass(u.hostname or ""):
            return True
        try:
            socket.create_connection((u.hostname or "", u.port or (443 if u.scheme == "https" else 80)),
                                     timeout=timeout).close()
        except OSError:
            return False
        return True

    def _once(self, body: dict) -> tuple[str | None, str | None, bool]:
        """(content, error, worth retrying)."""
        reply = post_chat(self.endpoint, body, self.timeout, self.api_key)
        if reply.content is not None:
            return reply.content, None, False
        code = reply.status  # an HTTP error is retried only when the server may answer next time
        return None, reply.error, code is None or code in (400, 408, 409, 429) or code >= 500

    def chat(self, messages: list[dict], temperature: float, max_tokens: int) -> tuple[str | None, str | None, int]:
        """(content, None, calls) or (None, last error, calls) after `retries` retries."""
        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        err = None
        for k in range(self.retries + 1):
            content, err, again = self._once(body)
            if content is not None or not again:
                return content, err, k + 1
            if k < self.retries:
                self.sleep(self.backoff * 2 ** k * (1 + 0.25 * random.random()))
        return None, err, self.retries + 1


def judge_game(cfg: JudgeConfig, ep: Endpoint, question: str, a: str, b: str, category: str | None = None) -> dict:
    """One game: {'label', 'judgment', 'error', 'calls'}; label None with an error = the call failed,
    label None without one = the judge answered without a verdict."""
    messages = [{"role": "system", "content": cfg.system_for(category)},
                {"role": "user", "content": cfg.user_message(question, a, b)}]
    text, calls = "", 0
    for attempt in range(max(1, cfg.attempts)):
        content, err, n = ep.chat(messages, cfg.temperature, cfg.max_tokens)
        calls += n
        if content is None:
            return {"label": None, "judgment": text or None, "error": err, "calls": calls}
        text = content if cfg.version == "main" else text + "\n" + content  # legacy joins every attempt
        label, again = cfg.parse(text)
        if not again:
            break
        messages += [{"role": "assistant", "content": content}, {"role": "user", "content": FINISH}]
    return {"label": label, "judgment": text, "error": None, "calls": calls}
