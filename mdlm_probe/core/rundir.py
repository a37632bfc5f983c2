"""Run directories: creating them (`prepare_run_dir`) and reading them back (`Run`, `load_run`).

`config.json` is the single source of truth for a run, saved beside its results. Rerunning into a
directory whose config differs is bad input unless `overwrite`; the same config resumes (the record
files skip ids already present), and a config that only asks for more samples (a larger --limit)
extends the run. Every reader of a run directory (compare, errors, report) goes through `load_run`,
so the files a run holds are read in one place; shard files (`shards/<stem>-i-of-n.jsonl`, written by
worker processes, see workers.run_shards) are named, read and merged here too.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Sequence

from .exceptions import BadInput
from .records import RecordWriter, dedupe, read_objects, read_records, record_key

# Keys that may differ between a run and its resumption without changing its results.
# "card" (cards.py) holds the commit, device and versions, which change between identical reruns.
VOLATILE = ("created", "versions", "resumed", "extended", "num_processes", "shard", "card")

# Defaults every command shares (cli/options.py turns them into options; the library uses them too).
DEFAULT_CHAT = True  # wrap prompts in the tokenizer's chat template when it has one
RUNS_ROOT = Path("runs")


def default_out(command: str, benchmark: str, ckpts: Sequence[str]) -> Path:
    """The run directory a command writes to when --out is not given: runs/<command>/<bench>-<ckpt>[+<ckpt>...]."""
    names = "+".join(Path(str(c)).name or str(c).replace("/", "_") for c in ckpts)
    return RUNS_ROOT / command / f"{benchmark}-{names}"


def check_folder(path: Path | str, what: str = "--out") -> Path:
    """`path` unless a file stands where it or one of its parent folders should be (one BadInput line)."""
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                where = "" if q == p else f" (its parent {q} is a file)"
                raise BadInput(f"{what} {p}: a file is in the way{where}; remove it or choose another {what}")
            break
    return p


def make_folder(path: Path | str, what: str = "--out") -> Path:
    """`path` as a folder (created with its parents), or one BadInput line when a file is in the way."""
    p = check_folder(path, what)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # no permission, read-only file system ...
        raise BadInput(f"{what} {p}: cannot create it ({e.strerror or e})") from None
    return p


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("mdlm-probe", "torch", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in VOLATILE}


def _grows(old: Any, new: Any) -> bool:
    """A size that may only grow: None is everything (the largest)."""
    if new is None:
        return True
    return old is not None and isinstance(old, (int, float)) and isinstance(new, (int, float)) and new >= old


def prepare_run_dir(out: Path | str, config: dict[str, Any], overwrite: bool = False,
                    outputs: tuple[str, ...] = (), grows: tuple[str, ...] = ()) -> Path:
    """Create or reopen a run directory for `config`.

    - new directory: writes config.json;
    - same config: resumes (returns the directory untouched);
    - a config that differs only in `grows` keys (sizes such as limit and the number of samples), each
      as large or larger: extends the run (config.json updated; the records so far are kept and reused);
    - different config: BadInput, unless `overwrite`, which removes `outputs` and starts fresh, or the
      directory holds none of `outputs` (an earlier attempt stopped before writing any): then it starts fresh.
    """
    out = check_folder(out)
    cfg_path = out / "config.json"
    config = json.loads(json.dumps(config, default=str))  # normalise (tuples -> lists, paths -> str)
    if cfg_path.is_file():
        try:
            old = json.loads(cfg_path.read_text())
        except json.JSONDecodeError:
            old = None
        if old is not None and _comparable(old) == _comparable(config):
            return out
        if isinstance(old, dict):
            keys = set(_comparable(config)) | set(_comparable(old))
            diff = {k for k in keys if old.get(k) != config.get(k)}
            if diff and diff <= set(grows) and all(_grows(old.get(k), config.get(k)) for k in diff):
                now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
                merged = {**old, **_comparable(config), "extended": now}
                cfg_path.write_text(json.dumps(merged, indent=2) + "\n")
                return out
        # A directory whose run never wrote a result (it stopped at bad input, say) holds no run yet.
        empty = not any(_holds_something(out / name) for name in outputs)
        if not overwrite and not empty:
            diff = sorted(k for k in set(_comparable(config)) | set(_comparable(old or {}))
                          if (old or {}).get(k) != config.get(k))
            raise BadInput(f"{out} holds a run with a different config (differs in: {', '.join(diff) or 'format'}); "
                           f"use --overwrite or another --out")
        for name in outputs:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    make_folder(out)
    config = dict(config)
    config.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    config.setdefault("versions", package_versions())
    cfg_path.write_text(json.dumps(config, indent=2) + "\n")
    return out


def _holds_something(p: Path) -> bool:
    """A result file with content, or a folder with anything in it (an empty record file is no result)."""
    if p.is_dir():
        return any(p.iterdir())
    return p.is_file() and p.stat().st_size > 0


def load_config(run_dir: Path | str) -> dict[str, Any]:
    p = Path(run_dir) / "config.json"
    if not p.is_file():
        raise BadInput(f"{run_dir} is not a run directory (no config.json)")
    try:
        cfg = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BadInput(f"corrupt {p}: {e}") from None
    if not isinstance(cfg, dict):
        raise BadInput(f"corrupt {p}: not a JSON object")
    return cfg


# ----------------------------------------------------------------------------------------- reading runs
SAMPLES, SHIFT, ERRORS, COMPARE = "samples.jsonl", "shift.jsonl", "errors.jsonl", "compare.json"
RECORD_FILES = (SAMPLES, SHIFT)
SHARDS = "shards"  # shards/<stem>-<i>-of-<n>.jsonl: records of a run still split over worker processes


@dataclass
class Run:
    """One run directory as read back. Records keep their file order (main file, then any shard files);
    a (checkpoint, id) seen twice keeps its first record."""

    dir: Path
    config: dict[str, Any] = field(default_factory=dict)  # config.json ({} if absent)
    samples: list[dict[str, Any]] = field(default_factory=list)  # samples.jsonl of an eval run
    shift: list[dict[str, Any]] = field(default_factory=list)  # shift.jsonl of a shift run
    errors: list[dict[str, Any]] = field(default_factory=list)  # errors.jsonl findings ("ckpt", "id", "pattern")
    compare: dict[str, Any] | None = None  # compare.json
    skipped: int = 0  # malformed lines skipped (records and findings)
    label: str = ""  # display label; load_runs makes labels unique

    def __post_init__(self) -> None:
        self.label = self.label or self.dir.name

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.samples + self.shift

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def files(self) -> list[str]:
        """The record files present (main files; shards count under their main file's name)."""
        return [f for f in RECORD_FILES if (self.dir / f).is_file() or shard_files(self.dir, f)]


# ----------------------------------------------------------------------------------------- shards
def parse_shard(spec: str | Sequence[int] | None) -> tuple[int, int] | None:
    """'i/n' (or (i, n)) -> (i, n); None stays None."""
    if spec is None:
        return None
    try:
        i, n = (int(x) for x in (spec.split("/") if isinstance(spec, str) else spec))
    except (ValueError, TypeError):
        raise BadInput(f"--shard {spec!r}: expected i/n, e.g. 0/8") from None
    if not 0 <= i < n:
        raise BadInput(f"--shard {spec}: need 0 <= i < n")
    return i, n


def shard_path(run_dir: Path | str, record_file: str, shard: tuple[int, int]) -> Path:
    """Where shard i of n writes the records of `record_file`: shards/<stem>-i-of-n.jsonl."""
    return Path(run_dir) / SHARDS / f"{Path(record_file).stem}-{shard[0]}-of-{shard[1]}.jsonl"


def shard_files(run_dir: Path | str, record_file: str) -> list[Path]:
    stem = Path(record_file).stem
    return sorted((Path(run_dir) / SHARDS).glob(f"{stem}-*-of-*.jsonl"))


def merge_shards(run_dir: Path | str, record_file: str) -> int:
    """Append every shard record whose (ckpt, id) the main file lacks, then remove the shard files.
    Returns how many records were appended."""
    main = Path(run_dir) / record_file
    have = {record_key(r) for r in read_records(main)[0]}
    n = 0
    with RecordWriter(main) as w:
        for f in shard_files(run_dir, record_file):
            for r in read_records(f)[0]:
                if record_key(r) not in have:
                    w.write(r)
                    have.add(record_key(r))
                    n += 1
    for f in shard_files(run_dir, record_file):
        f.unlink()
    return n


def read_run_records(run_dir: Path | str, record_file: str) -> tuple[list[dict[str, Any]], int]:
    """A record file merged with its shard files: (records, malformed lines). First (ckpt, id) wins."""
    d = Path(run_dir)
    recs, bad = read_records(d / record_file)
    for f in shard_files(d, record_file):
        r, b = read_records(f)
        recs += r
        bad += b
    return list(dedupe(recs)), bad


def load_run(path: Path | str, *, need_records: bool = False) -> Run:
    """Read a run directory. A missing directory, a corrupt config.json or compare.json is bad input.

    `need_records` (compare, errors): the run must hold records with text; records without a `text`
    string count as malformed, malformed lines are skipped with a warning, a corrupt config.json is
    ignored with a warning, and a run with no usable record is bad input. Otherwise (report) a
    directory needs only a config.json or a record file."""
    d = Path(path)
    if not d.is_dir():
        raise BadInput(f"no run directory {d}")
    run = Run(dir=d)
    present = run.files
    if need_records:
        if not present:
            raise BadInput(f"{d} holds no {' or '.join(RECORD_FILES)}")
        bad = 0
        for f, attr in ((SAMPLES, "samples"), (SHIFT, "shift")):
            recs, b = read_run_records(d, f)
            usable = [r for r in recs if isinstance(r.get("text"), str)]
            setattr(run, attr, usable)
            bad += b + len(recs) - len(usable)
        if bad:
            warnings.warn(f"{d}: skipped {bad} malformed line(s) (not JSON, no id, or no text)", stacklevel=2)
        if not run.records:
            raise BadInput(f"{d}: no usable records in {', '.join(present)}"
                           + (f" ({bad} malformed lines)" if bad else ""))
        run.skipped = bad
        if (d / "config.json").is_file():
            try:
                run.config = load_config(d)
            except BadInput:
                warnings.warn(f"{d}: corrupt config.json ignored", stacklevel=2)
    else:
        if not present and not any((d / f).is_file() for f in ("config.json", ERRORS, COMPARE)):
            # a `compare` output folder holds only compare.json: the report reads it too
            raise BadInput(f"{d} is not a run directory "
                           f"(no config.json, {', '.join(RECORD_FILES + (ERRORS, COMPARE))})")
        if (d / "config.json").is_file():
            run.config = load_config(d)
        for f, attr in ((SAMPLES, "samples"), (SHIFT, "shift")):
            recs, b = read_run_records(d, f)
            setattr(run, attr, recs)
            run.skipped += b
    run.errors, b = read_objects(d / ERRORS)
    if need_records:  # compare/errors read records only; their own outputs may be rewritten
        return run
    run.skipped += b
    if (d / COMPARE).is_file():
        try:
            run.compare = json.loads((d / COMPARE).read_text())
        except json.JSONDecodeError as e:
            raise BadInput(f"corrupt {d / COMPARE}: {e}") from None
    return run


def load_runs(paths: Sequence[Path | str], *, need_records: bool = False) -> list[Run]:
    """`load_run` for each path, with unique labels (the folder name, else parent/name, else a counter)."""
    if not paths:
        raise BadInput("give at least one run directory")
    runs = [load_run(p, need_records=need_records) for p in paths]
    seen: dict[str, int] = {}
    for r in runs:
        if sum(o.label == r.label for o in runs) > 1:
            r.label = f"{r.dir.parent.name}/{r.dir.name}"
        seen[r.label] = seen.get(r.label, 0) + 1
        if seen[r.label] > 1:
            r.label = f"{r.label}#{seen[r.label]}"
    if not any(r.records or r.errors or r.compare for r in runs):
        raise BadInput("the run directories hold no records (samples.jsonl, shift.jsonl, errors.jsonl or compare.json)")
    return runs
