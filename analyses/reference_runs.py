"""What the scripts that make golden fixtures from reference code (analyses/make_*golden*.py, make_*fixture*.py) share:
checking that code outside the repository is the pinned commit's (git blob hashes), running it under its own
interpreter as a worker process of the same script, and writing the fixture JSON.

Standard library only: a worker imports its script, and so this module, under the reference's interpreter. Imported
by name: a script run as `python analyses/X.py` has this folder on its path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable


def git_blob(data: bytes) -> str:
    """The git blob hash of a file's bytes (what `git hash-object` prints): pins a file to a commit's version."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def blob_of(path: Path) -> str:
    return git_blob(Path(path).read_bytes())


def check_blobs(root: Path, files: dict[str, str], source: str) -> None:
    """Exit naming the first of `files` (path under `root` -> git blob) that is not the pinned version of `source`."""
    for f, blob in files.items():
        if blob_of(root / f) != blob:
            sys.exit(f"{root / f} is not blob {blob} of {source}")


def reference_parser(doc: str, ref_help: str, interpreter: tuple[str, str], fixture: Path) -> argparse.ArgumentParser:
    """The options of a script that runs a reference: --ref (required), the interpreter option (flag, help;
    required) that runs it, --out (default: the fixture's path in the repository)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--ref", required=True, help=ref_help)
    ap.add_argument(interpreter[0], required=True, help=interpreter[1])
    ap.add_argument("--out", default=str(fixture))
    return ap


def run_worker(python: str, script: str, tmp: Path, args: list[str], todo: Any, env: dict | None = None) -> dict:
    """Run `python script --worker ARGS... TODO OUT` in the scratch folder `tmp` (one thread, offline, its own
    Hugging Face modules cache, plus `env`): TODO is `todo` written as JSON, OUT the JSON the worker writes, returned."""
    todo_path, out_path = tmp / "todo.json", tmp / "out.json"
    todo_path.write_text(json.dumps(todo))
    env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_MODULES_CACHE": str(tmp / "modules")}
    subprocess.run([python, script, "--worker", *args, str(todo_path), str(out_path)], env=env, check=True, cwd=tmp)
    return json.loads(out_path.read_text())


def check_ran_under(ran: str, pinned: str, package: str = "transformers") -> None:
    """Exit unless the reference ran under the pinned version of `package` (the fixture records that one)."""
    if ran != pinned:
        sys.exit(f"the reference ran under {package} {ran}, not {pinned}")


def write_fixture(path: Path | str, obj: dict, ensure_ascii: bool = True) -> None:
    """The fixture as JSON, one space of indent, ending in a newline."""
    Path(path).write_text(json.dumps(obj, indent=1, ensure_ascii=ensure_ascii) + "\n", encoding="utf-8")


def worker_or_main(worker: Callable[..., None], main: Callable[[], None], n_args: int = 4) -> None:
    """A script's entry point: `--worker A B ...` runs worker(A, B, ...) (its first `n_args` arguments; under the
    reference's interpreter, started by run_worker), anything else main()."""
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:2 + n_args])
    else:
        main()
