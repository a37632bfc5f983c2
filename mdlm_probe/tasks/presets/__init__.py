"""Published presets: the settings a paper or reference repository published for a model and benchmark.

Each preset is one JSON file beside this module, in `tasks/presets/` (package data). Every setting there is `{"value", "source"}`,
the source naming the file and commit (or paper table) it was read from; a value not published is null with
source "not published" (a score published only where it was not read, such as a PDF table: "not recorded"),
and the run then falls back to the usual defaults. Run settings (few-shot count, chat template, the lm-eval
task) sit beside the sampler's. `apply_preset` merges the
sampler settings: command-line options win over the preset, the preset over the checkpoint sidecar and
the defaults (it reaches `resolve_sampler` as overrides).

A preset is the whole published protocol, not only the sampler: PROTOCOL_FIELDS (dtype, bos, truncation,
few-shot rule, prompt format, stop rule and strings, extraction, lm-eval version) sit among the settings, and
a top-level `not_reproduced` list ({field, reason}) names what mdlm-probe cannot reproduce.
`protocol_gap` names the first field a command does not honour (the commands refuse such a preset).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import SamplerConfig

PRESET_DIR = Path(__file__).resolve().parent  # one JSON file per preset, beside this module
SAMPLER_FIELDS = {f.name for f in fields(SamplerConfig)}
# Settings of the run, not of the sampler: few-shot count, chat template, and the lm-eval task the number
# was published with (`lm-eval --preset` runs it when no --tasks is given).
RUN_FIELDS = {"num_fewshot", "chat", "lm_eval_task",
              "fewshot_as_multiturn"}  # with the chat template: each shot a user/assistant turn, or all in one turn
# The rest of the published protocol (README "Reproducing published numbers"): how the reference built the
# prompt and read the answer. Values: dtype "bfloat16"/"auto"; bos "template" (the chat template's own),
# "tokenizer" (whatever encoding adds), "prepend" (bos text before the prompt), "none"; truncation "none" or
# "left:N" (keep the last N prompt tokens); fewshot_rule "fixed" (examples in the reference config),
# "first_n", "lm-eval-random-1234" (lm-eval's seeded sampler, one stream per process), "none";
# prompt_format a benchmark's `prompt_formats` name; stop_rule "until", "eos-until", "eos", "none"
# (tasks/extraction.apply_stop_rule) with stop_strings; extraction a tasks/extraction.EXTRACTIONS name;
# lm_eval_version the lm-eval release (or fork) the number came from.
PROTOCOL_FIELDS = {"dtype", "bos", "truncation", "fewshot_rule", "prompt_format", "stop_rule", "stop_strings",
                   "extraction", "lm_eval_version"}
RUN_FIELDS = RUN_FIELDS | PROTOCOL_FIELDS
# A null value's source starts with one of these: nobody published it, or it was published where this preset's
# author could not read it (a table in a PDF), so it is not recorded here.
NO_VALUE = ("not published", "not recorded")


@dataclass(frozen=True)
class Preset:
    name: str
    model: str  # the Hub name the number was published for
    benchmark: str
    description: str
    settings: dict[str, Any]  # setting -> value (None: not published)
    sources: dict[str, str]  # setting -> where it was published
    score: dict[str, Any] = field(default_factory=dict)  # value (None: not published), metric, source
    # protocol fields mdlm-probe does not reproduce: [{"field", "reason"}] (the golden tests check these instead)
    not_reproduced: tuple[dict[str, str], ...] = ()

    @property
    def protocol(self) -> dict[str, Any]:
        """Every run and protocol field (not the sampler's), null where not published."""
        return {k: v for k, v in self.settings.items() if k in RUN_FIELDS}

    @property
    def sampler(self) -> dict[str, Any]:
        """The published sampler settings (unpublished ones left out, so the defaults apply)."""
        return {k: v for k, v in self.settings.items() if k in SAMPLER_FIELDS and v is not None}

    @property
    def num_fewshot(self) -> int | None:
        return self.settings.get("num_fewshot")

    @property
    def chat(self) -> bool | None:
        return self.settings.get("chat")

    @property
    def lm_eval_task(self) -> str | None:
        return self.settings.get("lm_eval_task")

    @property
    def score_text(self) -> str:
        """'69.4 (GSM8K accuracy (%))', or 'not published' / 'not recorded' where no score is."""
        v = self.score.get("value")
        if v is None:
            return next(t for t in NO_VALUE if self.score["source"].startswith(t))
        return f"{v} ({self.score.get('metric', '')})"


def _parse(path: Path) -> Preset:
    where = f"preset {path.name}"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{where}: not readable JSON ({e})") from None
    for key in ("name", "model", "benchmark", "settings", "score"):
        if key not in raw:
            raise BadInput(f"{where}: missing {key!r}")
    settings, sources = {}, {}
    for k, entry in raw["settings"].items():
        if k not in SAMPLER_FIELDS | RUN_FIELDS:
            raise BadInput(f"{where}: unknown setting {k!r}")
        if not isinstance(entry, dict) or "value" not in entry or not entry.get("source"):
            raise BadInput(f"{where}: setting {k!r} needs a value and a source")
        settings[k], sources[k] = entry["value"], entry["source"]
    if not isinstance(raw["score"], dict) or "value" not in raw["score"] or not raw["score"].get("source"):
        raise BadInput(f"{where}: the score needs a value and a source")
    for k, v in settings.items():  # null: not published; a source saying so needs a null value
        if (v is None) != sources[k].startswith(NO_VALUE):
            raise BadInput(f"{where}: setting {k!r}: a null value goes with a source 'not published ...', and only then")
    if (raw["score"]["value"] is None) != raw["score"]["source"].startswith(NO_VALUE):
        raise BadInput(f"{where}: a null score goes with a source 'not published ...' or 'not recorded ...', "
                       "and only then")
    nr = raw.get("not_reproduced", [])
    if not isinstance(nr, list) or any(not isinstance(x, dict) or not x.get("field") or not x.get("reason")
                                       for x in nr):
        raise BadInput(f"{where}: not_reproduced must be a list of {{field, reason}}")
    p = Preset(name=raw["name"], model=raw["model"], benchmark=raw["benchmark"],
               description=raw.get("description", ""), settings=settings, sources=sources, score=raw["score"],
               not_reproduced=tuple(nr))
    try:  # the published settings over the defaults must make a valid sampler
        SamplerConfig.from_dict({**asdict(SamplerConfig()), **p.sampler}).validate()
    except (BadInput, ValueError, TypeError) as e:
        raise BadInput(f"{where}: invalid sampler settings: {e}") from None
    return p


@lru_cache(maxsize=None)
def load_presets(folder: Path = PRESET_DIR) -> dict[str, Preset]:
    """Every preset in `folder`, by name; a name used twice is refused (as the registries do)."""
    out: dict[str, Preset] = {}
    for path in sorted(folder.glob("*.json")):
        p = _parse(path)
        if p.name in out:
            raise BadInput(f"preset {p.name!r} defined twice ({path.name})")
        out[p.name] = p
    return out


def preset_names() -> list[str]:
    return sorted(load_presets())


def get_preset(name: str) -> Preset:
    presets = load_presets()
    if name not in presets:
        raise BadInput(f"unknown preset {name!r}; expected one of {', '.join(sorted(presets))}")
    return presets[name]


# Protocol values each path reproduces (field -> test on the value); any other protocol value is refused by
# `protocol_gap`. eval (and shift: the same records, runs/evaluate.build_records) applies a preset's protocol
# (runs/protocol.py): the reference prompt where a benchmark builds it and mdlm-probe can score it (GSM8K's
# formats), chat prompts rendered with the checkpoint's own chat template, every few-shot rule
# `protocol_prompt` implements (lm-eval's random draw as on one process), every stop rule of tasks/extraction,
# the GSM8K extractions, every bos rule (runs/protocol.encode_protocol: the template's, the tokenizer's
# default special tokens, the bos text prepended, none) and truncation "none" (a prompt that does not fit is
# refused) or "left:N" (the last N prompt tokens kept). OpenCompass's GPQA 5-shot prompt is read from the
# user's checkout (--protocol-source; without it eval refuses the preset saying so). The lm-eval version does
# not matter to eval, which builds the prompt itself: the versions whose prompts the goldens pin are honoured.
# HumanEval/MBPP: every reference's extraction (lm-eval's filters, OpenCompass's post-processors, Fast-dLLM's
# and Dream's `sanitize`, tasks/code_sanitize.py) and the program that reference executes
# (`CodeBenchmark.reference_programs`), run in mdlm-probe's sandbox with its limits (the references' 3 s or 10 s
# time limits are not kept). `generate` builds no benchmark prompt: only the dtype. lm-eval builds the
# task's prompt, few-shot draw, stop strings and filters itself.
EVAL_PROMPT_FORMATS = ("lm-eval:gsm8k", "fast-dllm:gsm8k", "opencompass:gsm8k_gen_1d7fe4", "lm-eval:gsm8k_cot")
EVAL_EXTRACTIONS = ("lm-eval:gsm8k", "lm-eval:gsm8k_cot", "opencompass:gsm8k_postprocess")
EVAL_PROMPT_FORMATS += ("dream-fork:gsm8k_cot", "opencompass:gpqa_fewshot_gen")  # GPQA: with --protocol-source
EVAL_EXTRACTIONS += ("opencompass:gpqa",)
EVAL_PROMPT_FORMATS += ("lm-eval:humaneval", "fast-dllm:humaneval", "opencompass:humaneval_gen_8e312c",
                        "dream-fork:humaneval_instruct", "lm-eval:mbpp", "opencompass:mbpp_gen_830460",
                        "dream-fork:mbpp_instruct")  # code: the reference's program, run in the sandbox
EVAL_EXTRACTIONS += ("lm-eval:humaneval", "lm-eval:none", "opencompass:humaneval_postprocess_v2", "opencompass:mbpp",
                     "fast-dllm:postprocess_code", "dream:postprocess_code", "dream-fork:build_predictions_instruct")
PROTOCOL_HONOURS: dict[str, dict[str, Any]] = {
    "eval": {"dtype": lambda v: True, "prompt_format": lambda v: v in EVAL_PROMPT_FORMATS,
             "fewshot_rule": lambda v: v in ("fixed", "first_n", "lm-eval-random-1234", "none"),
             "stop_rule": lambda v: v in ("until", "eos-until", "eos", "none"), "stop_strings": lambda v: True,
             "extraction": lambda v: v in EVAL_EXTRACTIONS,
             "bos": lambda v: v in ("template", "tokenizer", "prepend", "none"),
             "truncation": lambda v: v == "none" or re.fullmatch(r"left:[1-9][0-9]*", str(v)) is not None,
             "lm_eval_version": lambda v: v == "0.4.8" or str(v).startswith("dream-fork@")},
    "generate": {"dtype": lambda v: True},
    "lm-eval": {"dtype": lambda v: True, "prompt_format": lambda v: str(v).startswith("lm-eval:"),
                "fewshot_rule": lambda v: True, "extraction": lambda v: str(v).startswith("lm-eval:"),
                "stop_rule": lambda v: v in ("until", "eos"), "stop_strings": lambda v: True, "bos": lambda v: v == "tokenizer",
                "truncation": lambda v: v == "none", "lm_eval_version": lambda v: not str(v).startswith("dream-fork")},
}
# the order fields are reported in: the one that changes the prompt most first
PROTOCOL_ORDER = ("prompt_format", "lm_eval_version", "fewshot_rule", "stop_rule", "extraction", "bos",
                  "truncation", "stop_strings", "dtype")


def protocol_gap(p: Preset, command: str) -> str | None:
    """One line naming the first protocol field of `p` that `command` ("eval", "shift", "generate" or
    "lm-eval") does not reproduce, or None when it reproduces them all."""
    honours = PROTOCOL_HONOURS[{"shift": "eval"}.get(command, command)]
    for k in PROTOCOL_ORDER:
        v = p.settings.get(k)
        if v is not None and not honours.get(k, lambda _: False)(v):
            return (f"--preset {p.name} sets {k}={v!r} (the published protocol), which {command} cannot reproduce yet"
                    + ("" if command == "lm-eval" else f"; `mdlm-probe presets --show {p.name}` lists the protocol"))
    return None


def card_protocol(name: str | None) -> dict[str, Any] | None:
    """What a run card records of preset `name`'s protocol: every run/protocol field with its source, and
    the fields it declares not reproduced (None without a preset)."""
    if not name:
        return None
    p = get_preset(name)
    return {"fields": {k: {"value": v, "source": p.sources[k]} for k, v in sorted(p.protocol.items())},
            "not_reproduced": [dict(x) for x in p.not_reproduced]}


def apply_preset(name: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Sampler overrides for a run: the preset's published settings, then every option given (not None)."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return {**get_preset(name).sampler, **given}
