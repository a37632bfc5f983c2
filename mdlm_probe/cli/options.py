"""What the commands share: the consoles, the option builders and the options several commands take.

Shared option sets (the sampler options, `--ckpt`, `--threads`) are defined once here, each with one default
(the values live in mdlm_probe.core.rundir, which the library uses too), so `eval`, `shift` and `generate`
cannot drift apart; so are the groups several commands take together (`load_options`: how the model loads;
`preset_options`: a preset and what overrides it), each reaching the command as one dict of the library's keyword
arguments; the train options are built from `TrainConfig`'s fields (`config_options`). Help texts
that list choices (benchmarks, adapters, remasking rules, caches, collapses, checkpoints) are read from the
registries. The command modules import this one; it imports none of them (app.py registers them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import typing
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from rich.console import Console

from mdlm_probe.adapters import adapter_names
from mdlm_probe.core.checkpoints import shipped_names
from mdlm_probe.core.collapse import COLLAPSES
from mdlm_probe.core.devices import check_device
from mdlm_probe.core.rundir import DEFAULT_CHAT, RUNS_ROOT
from mdlm_probe.core.workers import set_threads
from mdlm_probe.decoding import CACHES, REMASKING
from mdlm_probe.decoding import REPAIRS, SCHEDULES
from mdlm_probe.tasks.benchmarks import DATA_ENV, benchmark_names

console = Console()
err_console = Console(stderr=True)


def choices(names) -> str:
    """'a, b or c' for a help text."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


ADAPTER_HELP = f"Force an adapter: {choices(adapter_names())}."
CKPT_HELP = f"Checkpoint: a shipped name ({', '.join(n for n in shipped_names() if n != 'tiny-random')}), a folder or a Hub name."
ALLOW_MISSING_HELP = ("Load a checkpoint that lacks weights the adapter needs, initialising them from a fixed seed "
                      "(two runs agree); without it such a checkpoint is refused.")
BENCHMARK_HELP = f"Benchmark: {choices(benchmark_names())}."
THREADS_HELP = ("torch CPU threads per process (default: OMP_NUM_THREADS when set, else 1: more threads gain "
                "little on an idle CPU and stall badly when other work shares the cores; see README, Performance).")

# name -> (type, help). Defaults are None: a value not given comes from the --preset, the checkpoint's sidecar,
# the adapter's defaults, then the global defaults (runs/settings.py: resolve_settings), and the resolved values
# go into the run's config, where each came from into its card.
SAMPLER_OPTIONS: dict[str, tuple[Any, str]] = {
    "gen_length": (Optional[int], "Response positions to generate."),
    "steps": (Optional[int], "Denoising steps in total (split evenly over blocks)."),
    "block_length": (Optional[int], "Semi-autoregressive block length (gen-length = one block)."),
    "temperature": (Optional[float], "Gumbel-max temperature; 0 = greedy."),
    "cfg_scale": (Optional[float], "Classifier-free guidance scale (0 = off)."),
    "remasking": (Optional[str], f"Which proposals commit first: {choices(REMASKING)}."),
    "schedule": (Optional[str], f"Commits per step: {choices(SCHEDULES)} (dream: Dream's clock and draws; "
                                "the dream adapter's default)."),
    "top_k": (Optional[int], "Keep the k most likely tokens before proposing and scoring (0 = off; Dream: 50)."),
    "top_p": (Optional[float], "Keep the smallest set of tokens reaching probability p, in (0, 1] (1 = off)."),
    "alg_temp": (Optional[float], "Dream's alg_temp: > 0 draws which positions commit from softmax(confidence / alg_temp)."),
    "eps": (Optional[float], "The dream schedule's final time, in (0, 1) (Dream: 1e-3)."),
    "threshold": (Optional[float], "Parallel decoding: commit every proposal at or above this confidence, in (0, 1] (Fast-dLLM)."),
    "confidence_dtype": (Optional[str], "The confidence's softmax: logits (in the logits' dtype, LLaDA's generate) or "
                                        "float64 (Fast-dLLM's)."),
    "cache": (Optional[str], f"Block KV cache: {choices(CACHES)} (prefix: keys/values before the block; "
                             "dual: before and after it)."),
    "cache_refresh": (Optional[int], "With --cache: a full forward every N steps within a block (0 = only at block starts)."),
    "measure_cache_drift": (Optional[bool], "With --cache: also run the exact forward and record per sample the cached "
                                            "logits' KL, top-1 agreement and commits that would differ (hook_info.cache_drift; "
                                            "costs a full forward per measured step; the decode is unchanged)."),
    "drift_every": (Optional[int], "With --measure-cache-drift: measure every k-th step (default 1)."),
    "cache_drift_threshold": (Optional[float], "--cache adaptive: a full forward once the probe position's keys moved this "
                                               "far (relative change) since the last one (0 = every step; 0.2)."),
    "compact": (Optional[bool], "Batch compaction: rows with no mask left up to the block's end leave the forward "
                                "batch (--cache none; same tokens, fewer positions forwarded; docs/sampler.md)."),
    "seed": (Optional[int], "Random seed."),
    "batch_size": (Optional[int], "Prompts decoded together."),
    "collapse": (Optional[str], f"Collapse map that is scored: {choices(COLLAPSES)} (surface deletes <slack>; "
                                "ctc merges repeats too)."),
    "repair": (Optional[str], f"Decode-time repair of committed tokens: {choices(n for n in REPAIRS if n != 'none')} "
                              "(default off; docs/repair.md). On shift: every decode with and without it, paired."),
    "repair_threshold": (Optional[float], "--repair: a committed token scored below this probability is doubted (0.5)."),
    "repair_budget": (Optional[int], "--repair: positions reopened or moved (edits tried) per sample and block (4)."),
    "repair_window": (Optional[int], "--repair seam: positions reopened either side of a seam (1)."),
    "repair_scope": (Optional[str], "--repair: block (the current block's committed tokens) or all (earlier blocks' too)."),
    "repair_every": (Optional[int], "--repair probe: steps of a block between two probes (16)."),
    "repair_stride": (Optional[int], "--repair probe: forwards per probe, each hiding every stride-th committed token (3)."),
}


def _with_options(func: Callable, param: str, extra: list[inspect.Parameter], build: Callable[[dict], Any]) -> Callable:
    """`func` with `extra` options in place of its parameter `param` (where it stands: help lists options in
    signature order), which receives build(their values)."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    at = [p.name for p in params].index(param)
    extra = [p.replace(kind=params[at].kind) for p in extra]  # a signature keeps its kinds in order
    names = {p.name for p in extra}

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        return func(*args, **{param: build(values)}, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params[:at] + extra + params[at + 1:])
    return wrapper


def _option(name: str, annotation: Any, default: Any, help: str, panel: str) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=typer.Option(default, "--" + name.replace("_", "-"), help=help,
                                                  rich_help_panel=panel))


def sampler_options(func: Callable) -> Callable:
    """Add the shared sampler options to a command; they reach it as one dict, `sampler`. Also `--threads`
    (every command that decodes has sampler options), applied before the command runs."""
    extra = [_option(name, typ, None, h, "Sampler") for name, (typ, h) in SAMPLER_OPTIONS.items()]
    extra.append(_option("threads", Optional[int], None, THREADS_HELP, "Sampler"))

    def build(values: dict) -> dict:
        set_threads(values.pop("threads"))
        return values
    return _with_options(func, "sampler", extra, build)


def config_options(cls: type, param: str, panel: str) -> Callable[[Callable], Callable]:
    """Add one option per field of the dataclass `cls` that has help metadata (`--field-name`, the field's
    type and default); they reach the command as one `cls` instance, `param`."""
    hints = typing.get_type_hints(cls)

    def annotation(t: Any) -> Any:
        args = typing.get_args(t)
        if type(None) in args:  # `X | None` -> Optional[X], which every typer understands
            return Optional[next(a for a in args if a is not type(None))]
        return t

    extra = [_option(f.name, annotation(hints[f.name]), f.default, f.metadata["help"], panel)
             for f in dataclasses.fields(cls) if "help" in f.metadata]

    def deco(func: Callable) -> Callable:
        return _with_options(func, param, extra, lambda values: cls(**values))
    return deco


def option_group(param: str, options: dict[str, tuple[Any, Any]]) -> Callable[[Callable], Callable]:
    """Put `options` (name -> (type, typer option), in this order) where the command's parameter `param` stands;
    their values reach the command as one dict, `param` (several commands declare the group once, here)."""
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=typ, default=default)
             for name, (typ, default) in options.items()]

    def deco(func: Callable) -> Callable:
        return _with_options(func, param, extra, dict)
    return deco


def load_options(order: tuple[str, ...] = ("adapter", "device", "dtype", "allow_missing_weights"),
                 note: str = "") -> Callable[[Callable], Callable]:
    """How a command loads its model, as the dict `load_opts`: `order` of --adapter, --device, --dtype and
    --allow-missing-weights (the names of the dict and of the library's keyword arguments); `note` ends the help
    of --device and --dtype."""
    made = {"adapter": (Optional[str], adapter_option()), "device": (Optional[str], device_option(note)),
            "dtype": (Optional[str], dtype_option(note)), "allow_missing_weights": (bool, allow_missing_option())}
    return option_group("load_opts", {name: made[name] for name in order})


def preset_options(func: Callable) -> Callable:
    """A published preset and what may override it, as the dict `preset_opts` (chat, preset, protocol_source: the
    library's keyword arguments): --chat/--no-chat (default: the preset's), --preset, --protocol-source."""
    return option_group("preset_opts", {"chat": (Optional[bool], chat_option(None)),
                                        "preset": (Optional[str], preset_option()),
                                        "protocol_source": (Optional[Path], protocol_source_option())})(func)


def adapter_option() -> Any:
    return typer.Option(None, "--adapter", help=ADAPTER_HELP)


def allow_missing_option() -> Any:
    return typer.Option(False, "--allow-missing-weights", help=ALLOW_MISSING_HELP)


def _checked_device(value: Optional[str]) -> Optional[str]:
    check_device(value)  # before any data or weights load: says which devices there are
    return value


def device_option(note: str = "") -> Any:
    return typer.Option(None, "--device", help=f"cpu, cuda, cuda:1 ...{note}", callback=_checked_device)


def dtype_option(note: str = "") -> Any:
    return typer.Option(None, "--dtype", help="float32, bfloat16, ..." + note if note
                        else "float32, bfloat16, float16, float64.")


def chat_option(default: bool | None = DEFAULT_CHAT) -> Any:
    """None as the default: the command tells "not given" apart (a --preset may then set it)."""
    return typer.Option(default, "--chat/--no-chat", help="Use the tokenizer's chat template when it has one"
                        + (f" (default: the preset's, else {DEFAULT_CHAT})." if default is None else "."))


def preset_option() -> Any:
    return typer.Option(None, "--preset", help="Published settings for a model and benchmark (`mdlm-probe presets` "
                        "lists them); options given on the command line win over it.")


def protocol_source_option() -> Any:
    return typer.Option(None, "--protocol-source", help="A preset's prompt text mdlm-probe does not store, read from "
                        "your own copy: for the GPQA presets a checkout of ML-GSAI/LLaDA or OpenCompass (its "
                        "configs/datasets/gpqa/gpqa_fewshot_gen.py, read with ast and checked by sha256).")


def out_option(command: str) -> Any:
    return typer.Option(None, "--out", help=f"Run directory (default {RUNS_ROOT}/{command}/<bench>-<ckpt>).")


def data_dir_option() -> Any:
    return typer.Option(None, "--data-dir", help=f"Folder laid out like ../shared/data (gsm8k/test.jsonl, ...), used "
                        f"when --data-file is not given (default: ${DATA_ENV}); else the Hub.")


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Library warnings (skipped lines, records without a reference) as `mdlm-probe: warning: ...` lines."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        err_console.print(f"mdlm-probe: warning: {message}", markup=False, highlight=False, soft_wrap=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield
