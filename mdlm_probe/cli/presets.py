"""`mdlm-probe presets`: list the published presets with the score published with each; `--show NAME` prints
one preset's whole protocol (sampler, run and protocol fields, each with its source)."""

from __future__ import annotations

import json

import typer

from mdlm_probe.tasks.presets import RUN_FIELDS, get_preset, load_presets
from .options import console
from .tables import Col, check_format, format_option, print_table

KEY_SETTINGS = ("gen_length", "steps", "block_length", "threshold", "cache", "remasking", "temperature", "top_p",
                "confidence_eos_eot_inf", "logits_eos_inf", "num_fewshot", "chat", "lm_eval_task")


def show(name: str, fmt: str) -> None:
    """Every field of preset `name` with its value and source; then the fields it does not reproduce."""
    p = get_preset(name)
    rows = [{"field": k, "kind": "protocol" if k in RUN_FIELDS else "sampler",
             "value": v if v is None or isinstance(v, (bool, int, float, str)) else json.dumps(v),
             "source": p.sources[k]} for k, v in p.settings.items()]
    rows += [{"field": x["field"], "kind": "not reproduced", "value": None, "source": x["reason"]}
             for x in p.not_reproduced]
    rows.append({"field": "score", "kind": "published", "value": p.score_text, "source": p.score["source"]})
    cols = [Col("field", "field"), Col("kind", "kind"), Col("value", "value"), Col("source", "source")]
    print_table(console, f"{p.name}: {p.model} on {p.benchmark}. {p.description}", cols, rows, fmt=fmt)


def presets(fmt: str = format_option(),
            show_name: str = typer.Option(None, "--show", metavar="NAME",
                                          help="Print preset NAME's whole protocol, every field with its source.")) -> None:
    """List the presets `--preset` accepts: model, benchmark, key settings, published score and its source;
    `--show NAME`: one preset's whole protocol (prompt format, few-shot rule, stop rule, extraction, ...)."""
    check_format(fmt)
    if show_name:
        return show(show_name, fmt)
    rows = []
    for name, p in sorted(load_presets().items()):
        settings = {k: p.settings[k] for k in KEY_SETTINGS if p.settings.get(k) is not None}
        rows.append({"preset": name, "model": p.model, "benchmark": p.benchmark,
                     "settings": " ".join(f"{k}={v}" for k, v in settings.items()), "published_score": p.score_text,
                     "source": p.score["source"], "key_settings": settings})
    cols = [Col("preset", "preset"), Col("model", "model"), Col("benchmark", "benchmark"), Col("settings", "settings"),
            Col("published score", "published_score"), Col("source", "source")]
    # names are never cut ("llada-gsm8k-…" cannot be copied): too wide, each preset is a block of lines
    print_table(console, "presets (use with --preset NAME)", cols, rows, fmt=fmt,
                records=[{k: v for k, v in r.items() if k != "settings"} for r in rows])


def register(app: typer.Typer) -> None:
    app.command(name="presets")(presets)
