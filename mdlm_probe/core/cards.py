"""Run cards: everything that decides a run's numbers, recorded under "card" in its config.json.

Published scores are hard to reproduce because the settings behind them go unrecorded (GPU model, dtype,
chat template, extraction rule, code version). `build_card` gathers those in one place; eval and shift
call it when they build their config. The card is in `rundir.VOLATILE`: the commit, dirty flag, device
and versions change between identical reruns, so a resumed run keeps the card of the run that created it.
`card_markdown` prints a card; `differing_fields` names the fields in which several cards differ, comparing
normalised values (`normalised`: a dtype left to the adapter's default counts as that default, aliases such
as `fp32` as their full name, an extraction rule without the notes appended to it), so only differences
that can change a number are marked.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path
from typing import Any, Sequence

import torch

from .checkpoints import read_sidecar
from .rundir import package_versions

# How each benchmark's score is decided (the scorer, and the rule that pulls an answer out of the text).
SCORERS = {
    "gsm8k": ("numeric match", "strict (#### N or 'The answer is N') when found, else flexible (last number)"),
    "synthetic": ("numeric match", "strict (#### N or 'The answer is N') when found, else flexible (last number)"),
    "gpqa": ("choice match", "strict ('The answer is (X)') when found, else flexible (last '(X)')"),
    "mbpp": ("unit tests in a sandbox", "code block or whole completion; pass@1"),
    "humaneval": ("unit tests in a sandbox", "prompt + completion; pass@1"),
}
# Notes older cards appended to an extraction rule: they do not change the rule, so comparisons drop them.
EXTRACTION_NOTES = ("; both rates in summary.json",)
DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16",
                 "fp64": "float64", "double": "float64"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "merges.txt",
                   "special_tokens_map.json")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when the package runs from one


def short_sha256(data: bytes) -> str:
    """The first 16 hex digits of sha256: how run cards, sidecars and configs name a file's content."""
    return hashlib.sha256(data).hexdigest()[:16]


def code_version() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the package runs from; (None, None) for an installed wheel."""
    if not (PACKAGE_ROOT / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        status = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None, None
    if commit.returncode != 0:
        return None, None
    return commit.stdout.strip() or None, (bool(status.stdout.strip()) if status.returncode == 0 else None)


def device_info(device: str | None) -> dict[str, Any]:
    """Name and count of the devices a run decodes on (cuda when asked for or, with no --device, present)."""
    cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if cuda:
        index = torch.device(device).index if device and ":" in str(device) else 0
        return {"type": "cuda", "name": torch.cuda.get_device_name(index or 0), "count": torch.cuda.device_count()}
    return {"type": str(device or "cpu"), "name": platform.processor() or platform.machine(), "count": 1}


def tokenizer_hashes(folder: Path | str | None) -> tuple[str | None, str | None]:
    """(tokenizer files hash, chat-template hash) of a local checkpoint folder; None where there is none."""
    if folder is None or not Path(folder).is_dir():
        return None, None
    folder = Path(folder)
    h = hashlib.sha256()
    found = False
    for name in TOKENIZER_FILES:
        p = folder / name
        if p.is_file():
            found = True
            h.update(name.encode())
            h.update(p.read_bytes())
    template = None
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    elif (folder / "tokenizer_config.json").is_file():
        try:
            template = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
        except (json.JSONDecodeError, AttributeError):
            template = None
    if template is not None and not isinstance(template, str):
        template = json.dumps(template, sort_keys=True)
    return (h.hexdigest()[:16] if found else None), (short_sha256(template.encode()) if template else None)


def build_card(*, benchmark: str, checkpoint: Path | str | None, checkpoint_hash: str | None, dtype: str | None,
               device: str | None, overrides: dict[str, Any] | None, chat: bool | None,
               preset: str | None = None, provenance: dict[str, str] | None = None,
               protocol: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card of one run (JSON-ready). `overrides`: every setting given on the command line; `provenance`:
    where each resolved setting came from (runs.settings.resolve_settings: command line, preset, sidecar,
    adapter, default); `protocol`: the preset's protocol fields with sources (tasks.presets.card_protocol),
    whose deviations from this environment (an lm-eval pin vs the installed lm-eval) the card names."""
    commit, dirty = code_version()
    versions = package_versions()
    tok, template = tokenizer_hashes(checkpoint if isinstance(checkpoint, Path) else
                                     (Path(checkpoint) if checkpoint and Path(checkpoint).is_dir() else None))
    scorer, extraction = SCORERS.get(benchmark, ("benchmark's own score()", None))
    applied = (protocol or {}).get("applied")  # eval/shift applied the preset's protocol (runs/protocol.py)
    if applied:
        compared = "letters, as exact strings" if applied["extraction"] == "opencompass:gpqa" else "numbers"
        judged = f"answers compared as {compared}" if scorer != SCORERS["mbpp"][0] else \
            "the program the reference builds from it run as unit tests in a sandbox"  # code (CodeBenchmark)
        extraction = (f"the preset's: stop rule {applied['stop_rule']} {applied['stop_strings']}, "
                      f"extraction {applied['extraction']}, {judged}")
    return {
        "code_commit": commit, "code_dirty": dirty,
        "torch": versions.get("torch"), "transformers": versions.get("transformers"),
        "mdlm_probe": versions.get("mdlm-probe"), "python": versions.get("python"),
        "device": device_info(device), "dtype": dtype,  # null: the adapter's default for the checkpoint
        "checkpoint_hash": checkpoint_hash, "tokenizer_hash": tok, "chat_template_hash": template,
        "chat": chat, "preset": preset, "overrides": dict(sorted((overrides or {}).items())),
        "scorer": scorer, "extraction": extraction,
        **({"provenance": dict(provenance)} if provenance is not None else {}),
        **({"protocol": protocol, "deviations": protocol_deviations(protocol)} if protocol else {}),
    }


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def protocol_deviations(protocol: dict[str, Any], lm_eval: str | None | bool = False) -> list[str]:
    """Where this environment differs from a preset's protocol: the lm-eval release it pins vs the one
    installed (`lm_eval`: the installed version, default: looked up)."""
    pin = ((protocol.get("fields") or {}).get("lm_eval_version") or {}).get("value")
    if not pin or protocol.get("applied"):  # applied by mdlm-probe itself: no lm-eval runs
        return []
    have = installed_version("lm_eval") if lm_eval is False else lm_eval
    if have == pin:
        return []
    return [f"lm_eval_version: the preset's protocol pins lm-eval {pin}, installed: {have or 'none'}"]


def flatten(card: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"device.name": ..., "overrides.steps": ...}: one row per field, for printing and comparing."""
    out: dict[str, Any] = {}
    for k, v in card.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _with_fewshot(card: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The card with the run's few-shot count beside `chat` (the prompt format; the config records it once)."""
    if "num_fewshot" not in config or not card:
        return card
    out: dict[str, Any] = {}
    for k, v in card.items():
        out[k] = v
        if k == "chat":
            out["num_fewshot"] = config["num_fewshot"]
    out.setdefault("num_fewshot", config["num_fewshot"])
    return out


def run_card(config: dict[str, Any]) -> dict[str, Any]:
    """The card of a run's config, plus the sampler settings it ran with (they decide the numbers too)."""
    card = _with_fewshot(dict(config.get("card") or {}), config)
    sampler = config.get("sampler")
    if sampler is None and config.get("checkpoints"):  # shift: one sampler per checkpoint
        sampler = {c.get("name"): c.get("sampler") for c in config["checkpoints"]}
    if sampler:
        card["sampler"] = sampler
    return card


def card_columns(label: str, config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(column label, card) to show for one run: none for a folder that decoded nothing (a compare
    folder), one per checkpoint for a shift run, so each column reads like an eval run's and two runs of
    the same checkpoint line up field by field. A run recorded before cards shows its sampler only."""
    ckpts = config.get("checkpoints")
    if not ckpts:
        card = run_card(config)
        return [(label, with_resolved_dtype(card, config.get("checkpoint")))] if card else []
    columns = []
    for c in ckpts:
        card = {**_with_fewshot(dict(config.get("card") or {}), config), "checkpoint_hash": c.get("hash"),
                "sampler": c.get("sampler")}
        if "tokenizer_hash" in card:  # the run's card holds one value for all its checkpoints: take each one's
            card["tokenizer_hash"], card["chat_template_hash"] = tokenizer_hashes(c.get("path"))
        columns.append((f"{label} · {c.get('name')}", with_resolved_dtype(card, c.get("path"))))
    return columns


def default_dtype(folder: Path | str | None) -> str | None:
    """The dtype a checkpoint loads in when no --dtype is given: float32 for the shipped/local adapter (a
    sidecar naming adapter "local"), else config.json's (`dtype` or `torch_dtype`, what transformers' "auto"
    picks); None when the folder is gone or says nothing."""
    folder = Path(folder) if folder else None
    if folder is None or not folder.is_dir():
        return None
    try:
        if (read_sidecar(folder) or {}).get("adapter") == "local":
            return "float32"
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - a report of old runs must not fail on a changed checkpoint folder
        return None
    found = config.get("dtype") or config.get("torch_dtype") if isinstance(config, dict) else None
    return normalised("dtype", found) if isinstance(found, str) else None


def with_resolved_dtype(card: dict[str, Any], folder: Path | str | None) -> dict[str, Any]:
    """The card with `dtype` null (the adapter's default) replaced by that default where it can be read."""
    if "dtype" in card and card["dtype"] is None:
        resolved = default_dtype(folder)
        if resolved is not None:
            card = {**card, "dtype": resolved}
    return card


def normalised(field: str, value: Any) -> Any:
    """A card field's value as compared: the spelling of a dtype and notes on an extraction rule do not count."""
    if isinstance(value, str):
        if field == "dtype":
            v = value.removeprefix("torch.").strip().lower()
            return DTYPE_ALIASES.get(v, v)
        if field == "extraction":
            for note in EXTRACTION_NOTES:
                value = value.removesuffix(note)
            return " ".join(value.split())
    return value


def differing_fields(cards: Sequence[dict[str, Any]]) -> set[str]:
    """Flattened fields whose normalised value is not the same in every card (absent counts as a value).
    Where a value came from (`provenance.*`) is shown but not compared: the values themselves are."""
    flats = [flatten(c) for c in cards]
    keys = {k for k in set().union(*flats) if not k.startswith("provenance.")} if flats else set()
    return {k for k in keys
            if len({json.dumps(normalised(k, f.get(k)), sort_keys=True, default=str) for f in flats}) > 1}


def card_markdown(config: dict[str, Any], title: str = "") -> str:
    """A run's card as a Markdown table."""
    card = run_card(config)
    lines = [f"# Run card: {title or config.get('ckpt') or config.get('command', 'run')}", "",
             f"command: {config.get('command')}  benchmark: {config.get('benchmark')}  created: {config.get('created')}",
             "", "| field | value |", "|---|---|"]
    if not config.get("card"):
        lines[2] += "  (recorded before run cards existed: only the sampler is known)"
    for k, v in flatten(card).items():
        shown = "null" if v is None else (json.dumps(v) if isinstance(v, (dict, list, bool)) else str(v))
        cell = shown.replace("|", "\\|")
        lines.append(f"| {k} | {cell} |")
    return "\n".join(lines) + "\n"
