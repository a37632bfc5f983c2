"""A preset's published protocol applied by `eval` and `shift` (through `evaluate.build_records`): the
reference prompt (`protocol_prompt`, chat prompts rendered with the checkpoint's own chat template), the
reference stop rule on the decoded text and the reference extraction, scored as the benchmark compares
answers. Which protocol values these commands honour is `tasks.presets.PROTOCOL_HONOURS["eval"]`.

Encoding (`encode_protocol`) follows the preset's `bos` rule: "template"/"none" encode the text as is (no special
tokens added: a chat template writes its own BOS); "tokenizer" encodes with the tokenizer's default special
tokens (lm-eval's `tokenizer(question)` in LLaDA's eval_llada.py: a BOS if the tokenizer adds one); "prepend"
puts the tokenizer's bos_token text before the prompt and then encodes as "tokenizer" does (Dream's
eval.py:257-260, add_bos_token). `truncation` "left:N" keeps the last N prompt tokens (Dream's fork,
diffllm.py:268); "none" refuses a prompt that does not fit. A prompt format whose text mdlm-probe does not
store (OpenCompass's GPQA 5-shot) is read from the user's checkout, `source` (`--protocol-source`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.tasks.benchmarks import gpqa
from mdlm_probe.tasks.extraction import INVALID, apply_stop_rule, extract
from mdlm_probe.tasks.presets import Preset, card_protocol, get_preset
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
    bos: str | None = None  # the bos rule (module docstring)
    source: str | None = None  # the file a prompt text was read from (OpenCompass's GPQA config), and its sha256
    source_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {**asdict(self), "stop_strings": list(self.stop_strings)}
        return {k: v for k, v in d.items() if v is not None or k not in ("source", "source_sha256")}

    @property
    def keep(self) -> int | None:
        """Prompt tokens kept by a "left:N" truncation (None: no cut)."""
        t = self.truncation or "none"
        return int(t.split(":", 1)[1]) if t.startswith("left:") else None


def needs_source(p: Preset) -> bool:
    """Whether preset `p`'s prompt text must come from the user's checkout (`--protocol-source`)."""
    return p.settings.get("prompt_format") == gpqa.OC_FORMAT


def source_line(p: Preset, command: str = "eval") -> str:
    return (f"--preset {p.name} sets prompt_format={gpqa.OC_FORMAT!r}, whose fixed 5-shot text holds GPQA "
            f"questions, which mdlm-probe does not store: {command} reads it from your copy; {gpqa.SOURCE_HINT}")


def protocol_of(preset: str | Preset | None, source: str | Path | None = None,
                command: str = "eval") -> Protocol | None:
    """The protocol a run with `preset` applies; None without a preset or when it publishes no prompt format
    (the run then builds mdlm-probe's own prompts). `source`: the user's checkout holding a prompt text
    mdlm-probe does not store (BadInput naming what to pass when the preset needs one and none is given)."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    if p is None or p.settings.get("prompt_format") is None:
        return None
    s, path, digest = p.settings, None, None
    if needs_source(p):
        if source is None:
            raise BadInput(source_line(p, command))
        _, file, digest = gpqa.opencompass_five_shot(source)
        path = str(file)
    return Protocol(preset=p.name, prompt_format=s["prompt_format"], fewshot_rule=s.get("fewshot_rule"),
                    stop_rule=s.get("stop_rule") or "none", stop_strings=tuple(s.get("stop_strings") or ()),
                    extraction=s.get("extraction") or "lm-eval:none", truncation=s.get("truncation"),
                    chat=bool(s.get("chat")), bos=s.get("bos"), source=path, source_sha256=digest)


def applied_protocol(preset: str | None, source=None, command: str = "eval") -> tuple[Protocol | None, dict | None]:
    """(the protocol a run applies, what its card records of the preset's protocol: every field with its
    source, and under "applied" the protocol applied)."""
    applied, card = protocol_of(preset, source, command), card_protocol(preset)
    if applied is not None:
        card["applied"] = applied.to_dict()
    return applied, card


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


def has_bos_token(ckpt) -> bool | None:
    """Whether checkpoint `ckpt` (loaded, or described: its folder) has a bos_token; None when unknown."""
    tok = getattr(ckpt, "tokenizer", None)
    if tok is not None:
        return bool(getattr(tok, "bos_token", None))
    path = getattr(ckpt, "path", None)
    try:
        bos = json.loads((Path(path) / "tokenizer_config.json").read_text(encoding="utf-8")).get("bos_token")
    except (TypeError, OSError, json.JSONDecodeError, AttributeError):
        return None
    return bool(bos.get("content") if isinstance(bos, dict) else bos)


def no_bos_line(name: str) -> str:
    return (f"--preset {name} sets bos='prepend' (the bos_token text before the prompt), but this checkpoint's "
            "tokenizer has no bos_token")


def check_chat_template(p: Preset, ckpt, command: str) -> None:
    """Refuse (one line naming the field) a chat protocol on a checkpoint known to have no chat template, and a
    bos 'prepend' protocol on one known to have no bos_token."""
    if p.settings.get("prompt_format") is None:  # no protocol applied
        return
    if p.settings.get("chat") and has_chat_template(ckpt) is False:
        raise BadInput(no_template_line(p, command))
    if p.settings.get("bos") == "prepend" and has_bos_token(ckpt) is False:
        raise BadInput(no_bos_line(p.name))


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
    extra = {"source": proto.source} if proto.source else {}
    return [render(tok, bench.protocol_prompt(s, proto.prompt_format, num_fewshot, **extra), proto) for s in samples]


def protocol_samples(bench, samples: Sequence, proto: Protocol) -> list:
    """The samples as the reference scores them (GPQA: OpenCompass's correct letter); others unchanged."""
    fix = getattr(bench, "protocol_sample", None)
    return [fix(s, proto.prompt_format) for s in samples] if fix else list(samples)


def encode_protocol(tok, texts: Sequence[str], proto: Protocol, gen_length: int,
                    max_length: int) -> list[tuple[str, list[int], int]]:
    """Rendered prompt texts -> (the text encoded, token ids, tokens cut from the left) by the protocol's bos
    and truncation rules (module docstring). A prompt that does not fit beside `gen_length` in the model's
    `max_length` after the protocol's own cut is refused: any further cut would not be the protocol."""
    out = []
    for t in texts:
        if proto.bos == "prepend":
            if not getattr(tok, "bos_token", None):
                raise BadInput(no_bos_line(proto.preset))
            t = tok.bos_token + t
        ids = tok(t, add_special_tokens=proto.bos in ("tokenizer", "prepend"))["input_ids"]
        cut = max(0, len(ids) - proto.keep) if proto.keep is not None else 0
        if cut:
            ids = ids[cut:]
            t = tok.decode(ids)
        if len(ids) + gen_length > max_length:
            raise BadInput(f"--preset {proto.preset} sets truncation={proto.truncation or 'none'!r}, but a prompt "
                           f"({len(ids)} tokens{' after its cut' if cut else ''}) + gen-length {gen_length} exceed the "
                           f"model's max length {max_length}")
        out.append((t, ids, cut))
    return out


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
    elif proto.extraction == "opencompass:gpqa":  # GPQAEvaluator: the string as is == the letter (" ": no match)
        letter = None if got == " " else got
        return {**verdict_fields(letter, letter, sample.reference_answer),
                "protocol_output": {"text": text, "extraction": got}}
    else:
        raise BadInput(f"--preset {proto.preset} sets extraction={proto.extraction!r}, which eval cannot score yet")
    return {**verdict_fields(strict, flex, normalize_number(sample.reference_answer)),
            "protocol_output": {"text": text, "extraction": got}}


def score_outputs(model, proto: Protocol, outs: Sequence[dict], samples: Sequence, bench=None) -> list[dict]:
    """Outputs -> record fields by the protocol. The benchmark scores them where it has a reference verdict of
    its own (`Benchmark.protocol_score`: code runs the reference's program in the sandbox); else `score_text`."""
    tok = model.tokenizer
    specials, eos = special_strings(tok), getattr(tok, "eos_token", None) or ""
    raws = [o.get("raw_text") or "" for o in outs]
    if bench is not None:
        texts = [apply_stop_rule(proto.stop_rule, r, list(proto.stop_strings), list(specials), eos) for r in raws]
        judged = bench.protocol_score(texts, list(samples), proto.extraction)
        if judged is not None:
            return judged
    return [score_text(proto, r, s, specials=specials, eos=eos) for r, s in zip(raws, samples)]
