"""The `mdlm-probe` command line: a thin layer over the library (one function per command).

Shared option sets (the sampler options, `--ckpt`) are defined once here. Every command runs inside
`main()`, which turns `BadInput` into one line on stderr and exit code 2 (CONVENTIONS.md).
"""

from __future__ import annotations

import functools
import inspect
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console

from .checkpoints import DEFAULT_CKPT
from .errors import BadInput

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Evaluate and diagnose masked diffusion language models (LLaDA, Dream, MDLM, tiny CE/CTC models).")
console = Console()
err_console = Console(stderr=True)

CKPT_HELP = "Checkpoint: a shipped name (tiny-ce, tiny-ce-ft, tiny-ctc, tiny-ctc-surface), a folder or a Hub name."

# name -> (type, help). Defaults are None: a value not given comes from the checkpoint's sidecar, then
# the global defaults (sampler.resolve_sampler), and the resolved values go into the run's config.
SAMPLER_OPTIONS: dict[str, tuple[Any, str]] = {
    "gen_length": (Optional[int], "Response positions to generate."),
    "steps": (Optional[int], "Denoising steps in total (split evenly over blocks)."),
    "block_length": (Optional[int], "Semi-autoregressive block length (gen-length = one block)."),
    "temperature": (Optional[float], "Gumbel-max temperature; 0 = greedy."),
    "cfg_scale": (Optional[float], "Classifier-free guidance scale (0 = off)."),
    "remasking": (Optional[str], "Which proposals commit first: low_confidence, random, maskgit_plus, topk_margin, entropy."),
    "threshold": (Optional[float], "Parallel decoding: commit every proposal at or above this confidence, in (0, 1] (Fast-dLLM)."),
    "cache": (Optional[str], "Block KV cache: none, prefix (keys/values before the block) or dual (before and after it)."),
    "cache_refresh": (Optional[int], "With --cache: a full forward every N steps within a block (0 = only at block starts)."),
    "seed": (Optional[int], "Random seed."),
    "batch_size": (Optional[int], "Prompts decoded together."),
    "collapse": (Optional[str], "Collapse map that is scored: surface (delete <slack>) or ctc (merge repeats too)."),
}


def sampler_options(func: Callable) -> Callable:
    """Add the shared sampler options to a command; they reach it as one dict, `sampler`."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.name != "sampler"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=typ,
                               default=typer.Option(None, "--" + name.replace("_", "-"), help=h,
                                                    rich_help_panel="Sampler"))
             for name, (typ, h) in SAMPLER_OPTIONS.items()]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        sampler = {k: kwargs.pop(k) for k in list(kwargs) if k in SAMPLER_OPTIONS}
        return func(*args, sampler=sampler, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params + extra)
    return wrapper


# ----------------------------------------------------------------------------------------- generate
@app.command()
@sampler_options
def generate(
    ckpt: str = typer.Option(DEFAULT_CKPT, "--ckpt", help=CKPT_HELP),
    prompt: Optional[List[str]] = typer.Option(None, "--prompt", help="A prompt (repeatable)."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts-file", help="JSONL with a 'prompt' field per line."),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Use the tokenizer's chat template when it has one."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the sample records to this JSONL file."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="Force an adapter: llada, dream, mdlm, masked-lm, local."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ..."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32, bfloat16, float16, float64."),
    sampler: dict = None,
):
    """Decode prompts with the diffusion sampler and show the text."""
    from .adapters import load_model
    from .records import RecordWriter, make_record
    from .sampler import generate as run_generate, resolve_sampler

    prompts = list(prompt or [])
    if prompts_file is not None:
        prompts += read_prompts_file(prompts_file)
    if not prompts:
        raise BadInput("give --prompt TEXT or --prompts-file F.jsonl")
    model = load_model(ckpt, adapter=adapter, device=device, dtype=dtype)
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
    from .records import iter_jsonl

    out = []
    for n, obj in iter_jsonl(path, "prompts file"):
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
            raise BadInput(f"{path}:{n}: no 'prompt' string")
        out.append(obj["prompt"])
    return out


# ----------------------------------------------------------------------------------------- train
@app.command()
def train(
    init: str = typer.Option("tiny", "--init", help="tiny (fresh built-in model), a checkpoint name, folder or Hub name."),
    data: str = typer.Option("synthetic", "--data", help="synthetic, gsm8k, or a JSONL file (question/answer or prompt/response)."),
    objective: str = typer.Option("ce", "--objective", help="ce or ctc+ce."),
    collapse: str = typer.Option("surface", "--collapse", help="ctc+ce only: surface (delete <slack>) or ctc (standard CTC)."),
    ctc_weight: float = typer.Option(1.0, "--ctc-weight", help="lambda in CE + lambda * CTC."),
    slack_gaps: int = typer.Option(0, "--slack-gaps", help="ctc+ce only: at most this many <slack>s at random "
                                   "gaps of the CE canvas, the rest after EOS (-1: all at random gaps)."),
    steps: int = typer.Option(6000, "--steps"),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(2e-3, "--lr"),
    warmup: int = typer.Option(200, "--warmup"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device"),
    eval_n: int = typer.Option(1000, "--eval-n", help="Held-out problems scored at the end (0 = skip)."),
    save_every: int = typer.Option(250, "--save-every", help="Steps between resumable checkpoints."),
    name: Optional[str] = typer.Option(None, "--name", help="Checkpoint name for the sidecar (default: the --out folder name)."),
    n_layer: int = typer.Option(4, "--n-layer", help="Layers of a fresh tiny model (--init tiny)."),
    n_embd: int = typer.Option(128, "--n-embd", help="Width of a fresh tiny model (--init tiny)."),
    mlp_mult: int = typer.Option(4, "--mlp-mult", help="MLP width multiple of a fresh tiny model (--init tiny)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (1 avoids stalls when other work shares the cores)."),
    out: Path = typer.Option(..., "--out", help="Output folder: becomes a checkpoint folder usable with --ckpt."),
):
    """Train with CE or CTC+CE; resumes from the last save after a kill."""
    import torch

    from .train import TrainConfig, train as run_train

    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(init=init, data=data, objective=objective, collapse=collapse, ctc_weight=ctc_weight, slack_gaps=slack_gaps, steps=steps,
                      batch_size=batch_size, lr=lr, warmup=warmup, seed=seed, device=device, eval_n=eval_n,
                      save_every=save_every, name=name, n_layer=n_layer, n_embd=n_embd, mlp_mult=mlp_mult)
    side = run_train(cfg, out, progress=sys.stderr.isatty())
    held = side.get("heldout") or {}
    console.print(f"[bold]saved[/] {out}  held-out accuracy: {held.get('accuracy', 'not measured')}")


# ----------------------------------------------------------------------------------------- commands in their own modules
def _register_optional_commands() -> None:
    """Each larger command lives in mdlm_probe/commands/<name>.py and exposes `register(app)`."""
    import importlib
    import pkgutil

    from . import commands

    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(app)


_register_optional_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 2 bad input (one line), 1 internal error."""
    try:
        app(args=argv, standalone_mode=False)
    except BadInput as e:
        err_console.print(f"mdlm-probe: error: {e}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err_console.print("mdlm-probe: aborted")
        return 130
    except Exception as e:  # click usage errors carry their own exit code (2)
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        raise
    return 0


def entry() -> None:
    sys.exit(main())
