"""A preset's published protocol applied by `eval` and `shift` (through `evaluate.build_records`): the
reference prompt (`protocol_prompt`, chat prompts rendered with the checkpoint's own chat template), the
reference stop rule on the decoded text and the reference extraction, scored as the benchmark compares
answers. Which protocol values these commands honour is `tasks.presets.PROTOCOL_HONOURS["eval"]`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.extraction import INVALID, apply_stop_rule, extract
from mdlm_probe.tasks.presets import Preset, get_preset
from mdlm_probe.tasks.scoring import normalize_number, verdict_fields


@dataclass(frozen=True)
class Protocol:
    """The protocol fields a run applies (from preset `preset`)."""

    preset: str
    prompt_format: str
    fewshot_rule: str | None
    stop_rule: str
    stop_strings: tuple[str, ...]
    extraction: str
    truncation: str | None
    chat: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stop_strings": list(self.stop_strings)}


def protocol_of(preset: str | Preset | None) -> Protocol | None:
    """The protocol a run with `preset` applies; None without a preset or when it publishes no prompt format
    (the run then builds mdlm-probe's own prompts)."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    if p is None or p.settings.get("prompt_format") is None:
        return None
    s = p.settings
    return Protocol(preset=p.name, prompt_format=s["prompt_format"], fewshot_rule=s.get("fewshot_rule"),
                    stop_rule=s.get("stop_rule") or "none", stop_strings=tuple(s.get("stop_strings") or ()),
                    extraction=s.get("extraction") or "lm-eval:none", truncation=s.get("truncation"),
                    chat=bool(s.get("chat")))


def has_chat_template(ckpt) -> bool | None:
    """Whether checkpoint `ckpt` (a loaded model, or a described one: its folder) has a chat template;
    None when that cannot be told without loading it."""
    tok = getattr(ckpt, "tokenizer", None)
    if tok is not None:
        return bool(getattr(tok, "chat_template", None))
    path = getattr(ckpt, "path", None)
    if path is None or not Path(path).is_dir():
        return None
    path = Path(path)
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    try:
        return bool(json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, json.JSONDecodeError):
        return None


def no_template_line(p: Preset | Protocol, command: str) -> str:
    name, fmt = (p.name, p.settings["prompt_format"]) if isinstance(p, Preset) else (p.preset, p.prompt_format)
    return (f"--preset {name} sets prompt_format={fmt!r} (a chat prompt), which {command} cannot reproduce on "
            "this checkpoint: its tokenizer has no chat template")


def check_chat_template(p: Preset, ckpt, command: str) -> None:
    """Refuse (one line naming prompt_format) a chat protocol on a checkpoint known to have no chat template."""
    proto = protocol_of(p)
    if proto is not None and proto.chat and has_chat_template(ckpt) is False:
        raise BadInput(no_template_line(p, command))


def render(tok, prompt: str | dict, proto: Protocol, command: str = "eval") -> str:
    """A protocol prompt -> the exact text encoded: text as is; a chat prompt through the tokenizer's template."""
    if isinstance(prompt, str):
        return prompt
    if not getattr(tok, "chat_template", None):
        raise BadInput(no_template_line(proto, command))
    return tok.apply_chat_template(prompt["messages"], tokenize=False,
                                   add_generation_prompt=prompt.get("add_generation_prompt", True),
                                   continue_final_message=prompt.get("continue_final_message", False))


def protocol_texts(tok, bench, samples: Sequence, proto: Protocol, num_fewshot: int) -> list[str]:
    """The reference prompt texts of `samples` (world size 1 for lm-eval's per-process few-shot draw)."""
    return [render(tok, bench.protocol_prompt(s, proto.prompt_format, num_fewshot), proto) for s in samples]


def special_strings(tok) -> list[str]:
    """Every token text the tokenizer marks special (what `skip_special_tokens=True` drops)."""
    out = list(getattr(tok, "all_special_tokens", None) or [])
    out += [t.content for t in (getattr(tok, "added_tokens_decoder", None) or {}).values() if getattr(t, "special", False)]
    return sorted(set(out), key=lambda s: (-len(s), s))


def _answer(value: str, fallbacks: tuple[str, ...]) -> str | None:
    return None if value in fallbacks else normalize_number(value)


def score_text(proto: Protocol, raw_text: str, sample, *, specials: Sequence[str] = (), eos: str = "") -> dict:
    """One output (decoded with special tokens) -> the stop rule's text, the extraction and the verdict,
    compared as the benchmark compares answers (numbers normalised: tasks/scoring)."""
    text = apply_stop_rule(proto.stop_rule, raw_text, list(proto.stop_strings), list(specials), eos)
    got = extract(proto.extraction, text, prompt=getattr(sample, "question", ""))
    if isinstance(got, dict):  # lm-eval's two filters
        strict, flex = _answer(got["strict-match"], (INVALID,)), _answer(got["flexible-extract"], (INVALID,))
    elif proto.extraction == "opencompass:gsm8k_postprocess":
        strict = flex = _answer(got, ("NULL",))
    else:
        raise BadInput(f"--preset {proto.preset} sets extraction={proto.extraction!r}, which eval cannot score yet")
    return {**verdict_fields(strict, flex, normalize_number(sample.reference_answer)),
            "protocol_output": {"text": text, "extraction": got}}


def score_outputs(model, proto: Protocol, outs: Sequence[dict], samples: Sequence) -> list[dict]:
    tok = model.tokenizer
    specials, eos = special_strings(tok), getattr(tok, "eos_token", None) or ""
    return [score_text(proto, o.get("raw_text") or "", s, specials=specials, eos=eos) for o, s in zip(outs, samples)]
