"""`mdlm-probe generate`: decode prompts with the diffusion sampler and show the text."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from mdlm_probe.adapters import load_model
from mdlm_probe.core.checkpoints import DEFAULT_CKPT, apply_prompt_format
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.records import RecordWriter, iter_jsonl, make_record
from mdlm_probe.decoding import generate as run_generate
from mdlm_probe.runs.settings import resolve_settings
from .options import (CKPT_HELP, adapter_option, allow_missing_option, console, device_option, dtype_option,
                      sampler_options)


@sampler_options
def generate(
    ckpt: str = typer.Option(DEFAULT_CKPT, "--ckpt", help=CKPT_HELP),
    prompt: Optional[List[str]] = typer.Option(None, "--prompt", help="A prompt (repeatable). Laid out as the "
                                               "checkpoint was trained when its sidecar records a prompt_format "
                                               "(the tiny models: the question, then a newline); see --raw-prompt."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts-file", help="JSONL with a 'prompt' field per line."),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Use the tokenizer's chat template when it has one."),
    raw_prompt: bool = typer.Option(False, "--raw-prompt", help="Give the prompts exactly as typed, without the "
                                    "checkpoint's prompt_format."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the sample records to this JSONL file."),
    adapter: Optional[str] = adapter_option(),
    allow_missing_weights: bool = allow_missing_option(),
    device: Optional[str] = device_option(),
    dtype: Optional[str] = dtype_option(),
    sampler: dict = None,
):
    """Decode prompts with the diffusion sampler and show the text.

    A checkpoint's sidecar may record the prompt layout it was trained on (prompt_format; the tiny models: the question, then a newline); each prompt is put in it unless it already is or --raw-prompt is given."""  # noqa: E501 - help paragraphs stay one line
    prompts = list(prompt or [])
    if any(not p.strip() for p in prompts):  # nothing to condition on: refused like other empty input
        raise BadInput("--prompt is empty; give it some text")
    if prompts_file is not None:
        prompts += read_prompts_file(prompts_file)
    if not prompts:
        raise BadInput("give --prompt TEXT or --prompts-file F.jsonl")
    st = resolve_settings(ckpt=ckpt, adapter=adapter, sampler=sampler, chat=chat, dtype=dtype, command="generate")
    model = load_model(ckpt, adapter=adapter, device=device, dtype=st.dtype, allow_missing_weights=allow_missing_weights)
    cfg, chat = st.sampler, st.chat  # runs/settings.py: command line > sidecar > adapter > defaults
    if not raw_prompt:
        prompts = [apply_prompt_format(model.sidecar, p) for p in prompts]
    recs = run_generate(model, prompts, cfg, chat=chat)
    writer = RecordWriter(out) if out else None
    for i, r in enumerate(recs):
        rec = make_record(id=f"prompt/{i}", benchmark="prompt", ckpt=ckpt, **r)
        console.rule(f"[bold]{escape(ckpt)}[/] · prompt {i} · {r['nfe']} NFE · {r['seconds']:.2f}s")
        console.print(f"[dim]{escape(r['prompt'])}[/]", highlight=False)  # model text: never markup
        console.print(f"[bold green]{escape(r['text'])}[/]", highlight=False)
        if r["raw_text"] != r["text"]:
            console.print(f"[dim]raw: {escape(repr(r['raw_text']))}[/]", highlight=False)
        if writer:
            writer.write(rec)
    if writer:
        writer.close()
        console.print(f"wrote {len(recs)} records to {out}", markup=False, highlight=False)


def read_prompts_file(path: Path) -> list[str]:
    out = []
    for n, obj in iter_jsonl(path, "prompts file"):
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
            raise BadInput(f"{path}:{n}: no 'prompt' string")
        if not obj["prompt"].strip():
            raise BadInput(f"{path}:{n}: the prompt is empty")
        out.append(obj["prompt"])
    return out


def register(app: typer.Typer) -> None:
    app.command()(generate)
