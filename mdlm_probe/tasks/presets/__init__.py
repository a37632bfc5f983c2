"""Published presets: the settings a paper or reference repository published for a model and benchmark.

Each preset is one JSON file beside this module, in `tasks/presets/` (package data). Every setting there is `{"value", "source"}`,
the source naming the file and commit (or paper table) it was read from; a value not published is null with
source "not published" (a score published only where it was not read, such as a PDF table: "not recorded"),
and the run then falls back to the usual defaults. Run settings (few-shot count, chat template, the lm-eval
task) sit beside the sampler's. `apply_preset` merges the
sampler settings: command-line options win over the preset, the preset over the checkpoint sidecar and
the defaults (it reaches `resolve_sampler` as overrides).
"""

from __future__ import annotations

import json
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
RUN_FIELDS = {"num_fewshot", "chat", "lm_eval_task"}
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
    p = Preset(name=raw["name"], model=raw["model"], benchmark=raw["benchmark"],
               description=raw.get("description", ""), settings=settings, sources=sources, score=raw["score"])
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


def apply_preset(name: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Sampler overrides for a run: the preset's published settings, then every option given (not None)."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return {**get_preset(name).sampler, **given}
