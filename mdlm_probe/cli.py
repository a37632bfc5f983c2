"""The `mdlm-probe` command line: a thin layer over the library (one function per command).

Shared option sets (the sampler options, `--ckpt`, `--threads`) are defined once here; the train options
are built from `TrainConfig`'s fields. Help texts that list choices (benchmarks, adapters, remasking rules,
caches, collapses, checkpoints) are read from the registries. Every command runs inside `main()`, which
turns `BadInput` and every usage error (unknown option or command, missing value) into one line on stderr
and exit code 2 (docs/conventions.md).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import pkgutil
import sys
import typing
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console

from . import __version__, commands
from .adapters import load_model
from .benchmarks import benchmark_names
from .checkpoints import DEFAULT_CKPT, shipped_names
from .collapse import COLLAPSES
from .commands.options import adapter_option, choices, device_option, dtype_option
from .errors import BadInput
from .records import RecordWriter, iter_jsonl, make_record
from .sampler import CACHES, REMASKING, generate as run_generate, resolve_sampler
from .schedules import SCHEDULES
from .train import TrainConfig, train as run_train
from .workers import set_threads

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Evaluate and diagnose masked diffusion language models (LLaDA, Dream, MDLM, tiny CE/CTC models).")
console = Console()
err_console = Console(stderr=True)


CKPT_HELP = f"Checkpoint: a shipped name ({', '.join(n for n in shipped_names() if n != 'tiny-random')}), a folder or a Hub name."
ALLOW_MISSING_HELP = ("Load a checkpoint that lacks weights the adapter needs, initialising them from a fixed seed "
                      "(two runs agree); without it such a checkpoint is refused.")
BENCHMARK_HELP = f"Benchmark: {choices(benchmark_names())}."
THREADS_HELP = ("torch CPU threads per process (default: OMP_NUM_THREADS when set, else 1: more threads gain "
                "little on an idle CPU and stall badly when other work shares the cores; see README, Performance).")

# name -> (type, help). Defaults are None: a value not given comes from the checkpoint's sidecar, then
# the global defaults (sampler.resolve_sampler), and the resolved values go into the run's config.
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
    "seed": (Optional[int], "Random seed."),
    "batch_size": (Optional[int], "Prompts decoded together."),
    "collapse": (Optional[str], f"Collapse map that is scored: {choices(COLLAPSES)} (surface deletes <slack>; "
                                "ctc merges repeats too)."),
}


def _with_options(func: Callable, param: str, extra: list[inspect.Parameter], build: Callable[[dict], Any]) -> Callable:
    """`func` with `extra` options in place of its parameter `param`, which receives build(their values)."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.name != param]
    names = {p.name for p in extra}

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        return func(*args, **{param: build(values)}, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params + extra)
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


def version_callback(value: bool) -> None:
    if value:
        console.print(f"mdlm-probe {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                       help="Print the version and exit.")):
    """Evaluate and diagnose masked diffusion language models (LLaDA, Dream, MDLM, tiny CE/CTC models)."""


# ----------------------------------------------------------------------------------------- generate
@app.command()
@sampler_options
def generate(
    ckpt: str = typer.Option(DEFAULT_CKPT, "--ckpt", help=CKPT_HELP),
    prompt: Optional[List[str]] = typer.Option(None, "--prompt", help="A prompt (repeatable)."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts-file", help="JSONL with a 'prompt' field per line."),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Use the tokenizer's chat template when it has one."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the sample records to this JSONL file."),
    adapter: Optional[str] = adapter_option(),
    allow_missing_weights: bool = typer.Option(False, "--allow-missing-weights", help=ALLOW_MISSING_HELP),
    device: Optional[str] = device_option(),
    dtype: Optional[str] = dtype_option(),
    sampler: dict = None,
):
    """Decode prompts with the diffusion sampler and show the text."""
    prompts = list(prompt or [])
    if prompts_file is not None:
        prompts += read_prompts_file(prompts_file)
    if not prompts:
        raise BadInput("give --prompt TEXT or --prompts-file F.jsonl")
    model = load_model(ckpt, adapter=adapter, device=device, dtype=dtype, allow_missing_weights=allow_missing_weights)
    cfg = resolve_sampler(sampler, model)
    recs = run_generate(model, prompts, cfg, chat=chat)
    writer = RecordWriter(out) if out else None
    for i, r in enumerate(recs):
        rec = make_record(id=f"prompt/{i}", benchmark="prompt", ckpt=ckpt, **r)
        console.rule(f"[bold]{ckpt}[/] · prompt {i} · {r['nfe']} NFE · {r['seconds']:.2f}s")
        console.print(f"[dim]{r['prompt']}[/]", highlight=False)
        console.print(f"[bold green]{r['text']}[/]", highlight=False)
        if r["raw_text"] != r["text"]:
            console.print(f"[dim]raw: {r['raw_text']!r}[/]", highlight=False)
        if writer:
            writer.write(rec)
    if writer:
        writer.close()
        console.print(f"wrote {len(recs)} records to {out}")


def read_prompts_file(path: Path) -> list[str]:
    out = []
    for n, obj in iter_jsonl(path, "prompts file"):
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
            raise BadInput(f"{path}:{n}: no 'prompt' string")
        out.append(obj["prompt"])
    return out


# ----------------------------------------------------------------------------------------- train
@app.command()
@config_options(TrainConfig, "cfg", panel="Training (TrainConfig)")
def train(
    out: Path = typer.Option(..., "--out", help="Output folder: becomes a checkpoint folder usable with --ckpt."),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    cfg: TrainConfig = None,
):
    """Train with CE or CTC+CE (full or LoRA; multi-process under `accelerate launch`); resumes after a kill."""
    set_threads(threads)
    side = run_train(cfg, out, progress="auto")
    if os.environ.get("RANK", "0") != "0":  # under accelerate launch: the main process reports
        return
    held = side.get("heldout") or {}
    what = "checkpoint"
    if side.get("lora"):
        what = "LoRA adapter" + (f" (merged checkpoint: {out / 'merged'})" if cfg.merge else "")
    console.print(f"[bold]saved[/] {what} {out}  held-out accuracy: {held.get('accuracy', 'not measured')}",
                  highlight=False)


# ----------------------------------------------------------------------------------------- commands in their own modules
def _register_commands() -> None:
    """Each larger command lives in mdlm_probe/commands/<name>.py and exposes `register(app)`; modules
    without one (shared option helpers) are skipped. Imported here, after everything above is defined,
    because those modules import this one (a real cycle: they use `sampler_options` and `console`)."""
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        if hasattr(module, "register"):
            module.register(app)


_register_commands()


# ----------------------------------------------------------------------------------------- main
def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(ClickException, Abort) classes of every click the installed typer may raise: typer >= 0.16 ships
    its own copy as `typer._click`, older ones use `click`. Both are optional imports, hence the guards."""
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            pass
    return (tuple(m.ClickException for m in found),
            tuple(m.Abort for m in found if hasattr(m, "Abort")))  # typer's own copy raises typer.Abort


CLICK_ERRORS, CLICK_ABORTS = _click_exceptions()


def usage_line(e: Exception) -> str:
    """One line for a click usage error: the message, then where help is."""
    msg = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    where = f"{ctx.command_path} --help" if ctx is not None else "mdlm-probe --help"
    return f"mdlm-probe: error: {msg} (see '{where}')"


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 2 bad input or usage error (one line), 1 internal error."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="mdlm-probe")
    except BadInput as e:
        err_console.print(f"mdlm-probe: error: {e}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except (typer.Abort, *CLICK_ABORTS):
        err_console.print("mdlm-probe: aborted")
        return 130
    except CLICK_ERRORS as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `mdlm-probe` alone: the help was already printed
            return 2
        print(usage_line(e), file=sys.stderr)
        return 2
    # Without standalone mode, click returns the code of an `Exit` it caught (--help, --version) or the
    # command's return value (None).
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    sys.exit(main())
