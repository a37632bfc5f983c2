"""Every setting of a run resolved once, with where each value came from.

    command line (or model_args)  >  preset  >  checkpoint sidecar  >  adapter defaults  >  defaults

`resolve_settings` is the one place this order lives: `generate`, `eval` (`run_eval`), `shift` (`run_shift`),
`invariance` and `frontier` (through `run_eval`) and the lm-eval model class (`--model_args preset=NAME`) call
it, so a preset given to the library, the command line or lm-eval resolves to the same settings. It covers
the sampler (every `SamplerConfig` field), the chat template, the few-shot count and dtype, and records a
provenance (field -> "command line", "preset NAME", "sidecar", "adapter NAME", "default", ...) that the run
card keeps. A preset setting the command cannot honour (an lm-eval task for `eval`, a protocol field no
benchmark implements yet) is refused in one line naming the field: nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdlm_probe.adapters import describe_checkpoint
from mdlm_probe.core.checkpoints import DEFAULT_CKPT
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.rundir import DEFAULT_CHAT
from mdlm_probe.decoding import SamplerConfig
from mdlm_probe.decoding.settings import resolve_sampler_sources
from mdlm_probe.tasks.benchmarks import BENCHMARKS, Benchmark
from mdlm_probe.tasks.presets import PROTOCOL_FIELDS, SAMPLER_FIELDS, Preset, get_preset, protocol_gap
from .protocol import check_chat_template, needs_source, protocol_of

GIVEN = "command line"
DEFAULT = "default"
# Preset settings each path honours. A preset with another setting (not null) is refused by that path, naming
# the setting. When a benchmark implements a new protocol field, add its name here.
EVAL_HONOURS = SAMPLER_FIELDS | {"num_fewshot", "chat", "dtype", "fewshot_as_multiturn"}
LM_EVAL_HONOURS = EVAL_HONOURS | {"lm_eval_task"}
COMMANDS = ("eval", "shift", "generate", "lm-eval")


@dataclass(frozen=True)
class Settings:
    """A run's resolved settings. `num_fewshot` None: the lm-eval task's own count; `dtype` None: the
    adapter's default for the checkpoint."""

    ckpt: str
    path: Path | str | None
    sampler: SamplerConfig
    chat: bool
    num_fewshot: int | None
    dtype: str | None
    benchmark: str | None = None
    preset: str | None = None
    lm_eval_task: str | None = None
    fewshot_as_multiturn: bool | None = None
    given: dict[str, Any] = field(default_factory=dict)  # the sampler options given (the card's `overrides`)
    provenance: dict[str, str] = field(default_factory=dict)  # field -> where its value came from

    def resolved(self) -> dict[str, Any]:
        """What decides the decode: sampler, chat, few-shot count, dtype (paths compare these)."""
        return {"sampler": self.sampler.to_dict(), "chat": self.chat, "num_fewshot": self.num_fewshot,
                "dtype": self.dtype}


def default_ckpt(preset: str | None) -> str:
    """The checkpoint a run uses when none is given: the preset's model, else the shipped default."""
    return get_preset(preset).model if preset else DEFAULT_CKPT


def check_preset(p: Preset, command: str, benchmark: str | None) -> None:
    """BadInput naming the first thing of preset `p` that `command` cannot honour."""
    if benchmark is not None and command in ("eval", "shift") and benchmark != p.benchmark:
        raise BadInput(f"--preset {p.name} was published for {p.benchmark}, not {benchmark}")
    honours = LM_EVAL_HONOURS if command == "lm-eval" else EVAL_HONOURS
    # eval/shift apply the whole published protocol (runs/protocol.py): the lm-eval task and the few-shot
    # layout are then the prompt format's, reproduced, not refused
    applied = command in ("eval", "shift") and p.settings.get("prompt_format") is not None \
        and protocol_gap(p, command) is None
    if p.lm_eval_task is not None and "lm_eval_task" not in honours and not applied:  # the likeliest reason first
        raise BadInput(f"--preset {p.name} was published with lm-eval's task {p.lm_eval_task!r} (lm_eval_task), "
                       f"which {command} cannot run: use `mdlm-probe lm-eval --preset {p.name}`")
    gap = protocol_gap(p, command)  # prompt format, stop rule, extraction ... (tasks/presets)
    if gap is not None:
        raise BadInput(gap)
    for k, v in p.settings.items():
        if v is None or k in PROTOCOL_FIELDS or (applied and k in ("lm_eval_task", "fewshot_as_multiturn")):
            continue
        if k == "fewshot_as_multiturn" and v and command != "lm-eval":
            raise BadInput(f"--preset {p.name} lays its few-shot examples out as chat turns "
                           f"(fewshot_as_multiturn), which {command} cannot (it puts them in one user turn)")
        if k not in honours:
            raise BadInput(f"--preset {p.name} sets {k}, which {command} cannot honour yet")


def _pick(name: str, given: Any, preset: Preset | None, below: list[tuple[str, Any]]) -> tuple[Any, str]:
    """(value, source): the first of given, the preset's `name`, then `below` [(source, value)] not None."""
    if given is not None:
        return given, GIVEN
    if preset is not None and preset.settings.get(name) is not None:
        return preset.settings[name], f"preset {preset.name}"
    for source, value in below:
        if value is not None:
            return value, source
    return None, below[-1][0] if below else DEFAULT


def _default_fewshot(benchmark: str | Benchmark | None) -> tuple[str, int | None]:
    if isinstance(benchmark, Benchmark):
        return f"benchmark {benchmark.name}", benchmark.default_fewshot
    cls = BENCHMARKS.get(benchmark) if benchmark else None
    return (f"benchmark {benchmark}", cls.default_fewshot) if cls else (DEFAULT, 0)


def resolve_settings(*, ckpt: str | Path | None = None, model=None, adapter: str | None = None,
                     benchmark: str | Benchmark | None = None, preset: str | None = None,
                     sampler: dict[str, Any] | None = None, chat: bool | None = None,
                     num_fewshot: int | None = None, dtype: str | None = None, command: str = "eval",
                     given_source: str = GIVEN, protocol_source: str | Path | None = None) -> Settings:
    """Resolve every setting of one run on one checkpoint (see the module docstring). None means "not
    given". `model`: a loaded model or `describe_checkpoint`'s info (else `ckpt` is described: no weights
    load). `command` decides which preset fields apply ("eval", "shift", "generate" or "lm-eval"; lm-eval
    leaves the few-shot count to its task unless the preset or the arguments set it, and its chat template
    to --apply_chat_template). `given_source` names the top layer in the provenance. `protocol_source`: the
    user's checkout holding a prompt text the preset needs and mdlm-probe does not store (eval and shift read
    and check it here, so a missing or different one is refused before anything runs)."""
    if command not in COMMANDS:
        raise ValueError(f"command {command!r}: expected one of {COMMANDS}")
    p = get_preset(preset) if preset else None
    if protocol_source is not None and (p is None or not needs_source(p)):  # an option given is never ignored
        raise BadInput(f"--protocol-source is read only with a preset whose prompt text mdlm-probe does not store "
                       f"(the GPQA presets), not {'--preset ' + p.name if p else 'without --preset'}")
    bench_name = benchmark.name if isinstance(benchmark, Benchmark) else benchmark
    if p is not None:
        check_preset(p, command, bench_name)
    ckpt_src = GIVEN if ckpt is not None or model is not None else (f"preset {p.name}" if p else DEFAULT)
    ckpt = str(ckpt) if ckpt is not None else (str(getattr(model, "name", "")) or default_ckpt(preset))
    info = model if model is not None else describe_checkpoint(ckpt, adapter)
    if p is not None and command in ("eval", "shift"):  # a chat protocol needs the checkpoint's chat template
        check_chat_template(p, info, command)
        protocol_of(p, protocol_source, command)  # a prompt text from the user's checkout: there and unchanged
    given = {k: v for k, v in (sampler or {}).items() if v is not None}
    layers = [(given_source, given)] + ([(f"preset {p.name}", p.sampler)] if p else [])
    cfg, provenance = resolve_sampler_sources(layers, info)
    side = getattr(info, "sidecar", None) or {}
    adapter_name = getattr(info, "adapter", None) or getattr(info, "adapter_name", None) or "defaults"

    lm_eval = command == "lm-eval"
    chat_default = [(DEFAULT + " (lm-eval: no --apply_chat_template)", False)] if lm_eval else [(DEFAULT, DEFAULT_CHAT)]
    chat_v, chat_src = _pick("chat", chat, p, [("sidecar", side.get("chat")), *chat_default])
    few_below = [("the lm-eval task's default", None)] if lm_eval else \
        [("sidecar", side.get("default_fewshot")), _default_fewshot(benchmark)]
    few_v, few_src = _pick("num_fewshot", num_fewshot, p, few_below)
    if few_v is not None and int(few_v) < 0:
        raise BadInput(f"--num-fewshot {few_v}: must be >= 0")
    dtype_v, dtype_src = _pick("dtype", dtype, p, [("sidecar", side.get("dtype")), (f"adapter {adapter_name}", None)])
    if dtype_v == "auto":  # the checkpoint config's dtype: what the adapter loads by default
        dtype_v, dtype_src = None, f"{dtype_src} (auto: adapter {adapter_name})"
    task_v, task_src = _pick("lm_eval_task", None, p, [(DEFAULT + " (--tasks)", None)])
    turns_v, turns_src = _pick("fewshot_as_multiturn", None, p, [(DEFAULT, None)])
    provenance.update(ckpt=ckpt_src, chat=chat_src, num_fewshot=few_src, dtype=dtype_src)
    if lm_eval:
        provenance.update(lm_eval_task=task_src, fewshot_as_multiturn=turns_src)
    return Settings(ckpt=ckpt, path=getattr(info, "path", None), sampler=cfg, chat=bool(chat_v), num_fewshot=None if few_v is None else int(few_v),
                    dtype=dtype_v, benchmark=bench_name or (p.benchmark if p else None), preset=preset,
                    lm_eval_task=task_v, fewshot_as_multiturn=turns_v, given=given,
                    provenance=dict(sorted(provenance.items())))
