"""Checkpoint folders and their `mdlm_probe.json` sidecar (see docs/conventions.md).

A checkpoint is a Hugging Face folder (config.json, weights, tokenizer files) plus the sidecar beside
config.json. Shipped checkpoints live in `mdlm_probe/checkpoints/<name>/` as package data; that folder
name is what `--ckpt` accepts. Anything else is a local path or, for users with network, a Hub name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .exceptions import BadInput

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"  # package data: mdlm_probe/checkpoints/
SIDECAR = "mdlm_probe.json"
ADAPTER_CONFIG = "adapter_config.json"  # a peft (LoRA) adapter folder: base checkpoint + adapter
DEFAULT_CKPT = "tiny-ce"

SIDECAR_KEYS = (
    "name", "adapter", "mask_id", "slack_id", "eos_id", "objective", "collapse", "ctc_weight", "init", "data",
    "steps", "batch_size", "lr", "seed", "train_seconds", "device", "code_commit", "max_length",
    "default_fewshot", "prompt_format", "sampler", "heldout",
)
OBJECTIVES = ("ce", "ctc+ce")


def folder_tokenizer(folder: str | Path, **kw):
    """The tokenizer of a checkpoint folder (or Hub name), read without remote code: a tokenizer needs none, and
    left unset transformers asks on the terminal for a folder whose config has an `auto_map`. Its warning that
    the config names a model type the tokenizer does not use is silenced."""
    from transformers import AutoTokenizer  # heavy: only when a tokenizer is wanted
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False, **kw)
    finally:
        hf_logging.set_verbosity(verbosity)


def shipped_names() -> list[str]:
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "config.json").is_file())


def resolve(name_or_path: str | Path) -> Path | str:
    """A shipped name or an existing folder -> Path; anything that looks like `org/model` -> Hub name.

    Raises BadInput for a path that does not exist (one clear line instead of a Hub lookup error).
    """
    s = str(name_or_path)
    if (SHIPPED_DIR / s / "config.json").is_file():
        return SHIPPED_DIR / s
    p = Path(s).expanduser()
    if p.exists():
        if not p.is_dir() or not ((p / "config.json").is_file() or (p / ADAPTER_CONFIG).is_file()):
            raise BadInput(f"checkpoint {s!r} is not a model folder (no config.json nor {ADAPTER_CONFIG} in it)")
        return p.resolve()
    if s.count("/") == 1 and not s.startswith((".", "/", "~")):
        return s  # a Hub name; loading it needs network
    raise BadInput(f"no checkpoint {s!r}: not a shipped name ({', '.join(shipped_names()) or 'none shipped'}) "
                   f"nor an existing folder")


def is_adapter_folder(path: Path | str) -> bool:
    """A local peft adapter folder (what `train --lora` writes): loads as its base checkpoint + the adapter."""
    return isinstance(path, Path) and (path / ADAPTER_CONFIG).is_file()


def adapter_base(folder: Path, sidecar: dict[str, Any] | None) -> Path | str:
    """The base checkpoint of an adapter folder, resolved like any --ckpt: the sidecar's `base_checkpoint`, else
    adapter_config.json's `base_model_name_or_path`; a relative path is also tried inside the folder."""
    name = (sidecar or {}).get("base_checkpoint")
    if not name:
        try:
            name = json.loads((folder / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
        except (OSError, ValueError, AttributeError) as e:
            raise BadInput(f"corrupt adapter folder {folder}: {ADAPTER_CONFIG} unreadable ({e})") from None
    if not name:
        raise BadInput(f"adapter folder {folder} names no base checkpoint (sidecar base_checkpoint or "
                       f"{ADAPTER_CONFIG} base_model_name_or_path)")
    inside = folder / str(name)
    if not Path(str(name)).is_absolute() and (inside / "config.json").is_file():
        return inside.resolve()
    try:
        return resolve(name)
    except BadInput as e:
        raise BadInput(f"adapter folder {folder}: its base checkpoint is missing ({e})") from None


def read_sidecar(folder: Path | str) -> dict[str, Any] | None:
    """The sidecar of a local folder, or None when it has none. A corrupt sidecar is bad input."""
    if not isinstance(folder, Path):
        return None
    f = folder / SIDECAR
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"corrupt sidecar {f}: {e}") from None
    if not isinstance(data, dict):
        raise BadInput(f"corrupt sidecar {f}: not a JSON object")
    return data


def write_sidecar(folder: Path, data: dict[str, Any]) -> None:
    (folder / SIDECAR).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def apply_prompt_format(sidecar: dict[str, Any] | None, prompt: str) -> str:
    """`prompt` in the layout the checkpoint was trained on: the sidecar's `prompt_format` with `{prompt}`
    replaced by it (the tiny models: "{prompt}\n", the synthetic task's layout). A prompt already in that
    layout, or a checkpoint without one (null, no sidecar), keeps the prompt as given."""
    fmt = (sidecar or {}).get("prompt_format")
    if not isinstance(fmt, str) or "{prompt}" not in fmt:
        return prompt
    before, after = fmt.split("{prompt}", 1)
    if prompt.startswith(before) and prompt.endswith(after):
        return prompt
    return before + prompt + after


def missing_sidecar_keys(data: dict[str, Any]) -> list[str]:
    return [k for k in SIDECAR_KEYS if k not in data]


def checkpoint_hash(folder: Path | str) -> str:
    """sha256 over the weight files (first 16 hex digits): ties a run to the exact weights it used."""
    if not isinstance(folder, Path):
        return f"hub:{folder}"
    h = hashlib.sha256()
    if is_adapter_folder(folder):  # a LoRA folder decodes with its base's weights too
        h.update(checkpoint_hash(adapter_base(folder, read_sidecar(folder))).encode())
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]
