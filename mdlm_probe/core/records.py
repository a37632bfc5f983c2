"""The sample record (docs/conventions.md) and its JSONL file: appended and flushed one line at a time.

A killed run leaves at most one partial last line; `read_records` skips it (with a count) and a rerun
skips ids already present, so nothing is lost or duplicated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from .collapse import collapse_all
from .exceptions import BadInput

RECORD_KEYS = (
    "id", "benchmark", "ckpt", "prompt", "prompt_ids", "reference", "reference_answer", "output_ids", "raw_text",
    "text_surface", "text_ctc", "text", "extracted", "correct", "verdict", "scores", "trajectory", "nfe",
    "seconds", "sampler", "intervention",
)
VERDICTS = ("correct", "wrong", "no_answer", "passed", "failed", "error", "timeout", "memory")


def decode_output(model, output_ids: list[int], collapse: str | None) -> dict[str, Any]:
    """output ids -> raw text and both collapse maps; `text` is the scored one (given, else the checkpoint's)."""
    tok = model.tokenizer
    maps = collapse_all(output_ids, tok, model.slack_id, model.stop_ids, model.special_drop_ids())
    how = collapse or default_collapse(model)
    return {
        "output_ids": [int(t) for t in output_ids],
        "raw_text": tok.decode(output_ids, skip_special_tokens=False),
        "text_surface": maps["surface"],
        "text_ctc": maps["ctc"],
        "text": maps[how],
        "collapse": how,
    }


def default_collapse(model) -> str:
    side = getattr(model, "sidecar", None) or {}
    return side.get("collapse") or "surface"


def decoded_records(model, prompts: list[str], prompt_ids: list[list[int]], decoded, cfg, sample_ids: list[str],
                    seconds: float) -> list[dict[str, Any]]:
    """The partial records of one decoded batch (`sampler.generate`; `evaluate.build_records` completes them).

    `decoded` is the sampler's `Decoded` for these prompts, `cfg` its SamplerConfig, `seconds` the batch's
    time per sample. Keys: prompt, prompt_ids, `decode_output`'s, trajectory, nfe, tokens_forwarded (per
    sample), seconds, sampler, and hook_info (what hooks recorded under `info[key][sample_id]`) if any.
    """
    P = decoded.x.shape[1] - cfg.gen_length  # the padded prompt length
    recs = []
    for j, (text, ids, sid) in enumerate(zip(prompts, prompt_ids, sample_ids)):
        rec = {
            "prompt": text,
            "prompt_ids": ids,
            **decode_output(model, decoded.x[j, P:].tolist(), cfg.collapse),
            "trajectory": {
                "commit_step": decoded.commit_step[j].tolist(),
                "confidence": [round(float(c), 5) for c in decoded.confidence[j]],
                "block": decoded.block_of[j].tolist(),
            },
            "nfe": decoded.nfe,
            "tokens_forwarded": decoded.tokens_forwarded // len(prompts),
            "seconds": round(seconds, 4),
            "sampler": cfg.to_dict(),
        }
        for key, per_row in decoded.info.items():
            if isinstance(per_row, dict) and sid in per_row:
                rec.setdefault("hook_info", {})[key] = per_row[sid]
        recs.append(rec)
    return recs


def make_record(**fields: Any) -> dict[str, Any]:
    """A full record: the conventions' keys in their order (missing ones None), extras kept after them."""
    rec = {k: fields.get(k) for k in RECORD_KEYS}
    rec.update({k: v for k, v in fields.items() if k not in rec})
    return rec


class RecordWriter:
    """Append-and-flush JSONL writer: each record is on disk (fsync'd) before the next one is made."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_partial_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, rec: dict[str, Any]) -> None:
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _truncate_partial_tail(path: Path) -> None:
    """Drop a half-written last line left by a killed run, so the next append starts on a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    with open(path, "r+b") as fh:
        fh.truncate(cut)


def read_objects(path: Path | str, required: tuple[str, ...] = ()) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a JSONL file (a missing file has none), and how many lines were skipped as
    malformed: not JSON (a killed run's partial last line), not an object, or lacking a `required` key."""
    out, bad = [], 0
    path = Path(path)
    if not path.is_file():
        return [], 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if not isinstance(obj, dict) or any(k not in obj for k in required):
                bad += 1
                continue
            out.append(obj)
    return out, bad


def read_records(path: Path | str, warn: bool = True) -> tuple[list[dict[str, Any]], int]:
    """All parseable records of a JSONL file, and how many lines were skipped as malformed."""
    return read_objects(path, ("id",))


def iter_jsonl(path: Path | str, what: str, hint: str = ""):
    """(line number, parsed value) for each non-blank line of an input JSONL file.

    A missing file or a line that is not JSON is bad input (one line naming the file and line);
    callers check the fields they need. `hint` is appended to the not-JSON message."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"no {what} {path}")
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError:
                raise BadInput(f"{path}:{n}: not valid JSON{hint}") from None


def iter_done_ids(path: Path | str) -> set[str]:
    return {r["id"] for r in read_records(path)[0]}


def record_key(rec: dict[str, Any]) -> tuple[Any, str]:
    """(checkpoint, id): ids repeat across the checkpoints of one shift run."""
    return rec.get("ckpt"), rec["id"]


def dedupe(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """First record per (checkpoint, id) (a resumed run never writes duplicates, but merged shards might)."""
    seen = set()
    for r in records:
        if record_key(r) not in seen:
            seen.add(record_key(r))
            yield r
