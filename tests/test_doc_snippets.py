"""Every ```python block in README.md and docs/*.md runs (the `mdlm-probe` commands are test_doc_commands.py's).

The blocks of one file run in order in one namespace, like a reader pasting them into one session, in a
working folder where the paths the docs use resolve: `tests/fixtures/...` (a link to the checkout's) and
`../shared/data/...` (a link to the shared data folder; a file whose blocks use it is skipped when that folder
is absent). Outputs (`runs/...`) land in the temp folder.

A block that cannot run here (it needs a GPU, the network or the Hub) is marked in the markdown by the line
`<!-- snippet: syntax-only (reason) -->` right above its fence; it is compiled, not run. Keep those rare.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mdlm_probe.adapters import ADAPTERS
from mdlm_probe.tasks.benchmarks import BENCHMARKS
from mdlm_probe.runs.miners import DETECTORS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
SYNTAX_ONLY = re.compile(r"<!--\s*snippet:\s*syntax-only\s*\((?P<why>[^)]+)\)\s*-->\s*$")


def snippets(path: Path) -> list[tuple[int, str, str | None]]:
    """(line number, code, syntax-only reason or None) of each python block, in order."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = SYNTAX_ONLY.search(before)
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1), mark.group("why") if mark else None))
    return out


FILES_WITH_SNIPPETS = [p for p in DOC_FILES if snippets(p)]


def test_the_fence_pattern_finds_the_library_snippet():
    # Guards the collector itself: the README's Library section has a python block.
    assert any("load_model" in code for _, code, _ in snippets(ROOT / "README.md"))


def test_syntax_only_marks_are_few_and_give_a_reason():
    marked = [(p.name, line, why) for p in DOC_FILES for line, _, why in snippets(p) if why is not None]
    assert len(marked) <= 3, marked
    assert all(why.strip() for _, _, why in marked)


@pytest.mark.parametrize("path", FILES_WITH_SNIPPETS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_snippets_run(path: Path, tmp_path: Path, monkeypatch):
    blocks = snippets(path)
    if any("../shared" in code for _, code, why in blocks if why is None) and not (SHARED / "data").is_dir():
        pytest.skip(f"a snippet of {path.name} reads ../shared/data, which is absent beside the checkout")
    work = tmp_path / "work"
    (work / "tests").mkdir(parents=True)
    (work / "tests" / "fixtures").symlink_to(ROOT / "tests" / "fixtures")
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a snippet must not reach for the Hub unless it says so
    # A snippet may register an example adapter, benchmark or detector: the registries are put back after.
    saved = [(registry, set(registry)) for registry in (ADAPTERS, BENCHMARKS, DETECTORS)]
    namespace: dict = {"__name__": f"doc_snippets_{path.stem}"}
    try:
        for line, code, why in blocks:
            compiled = compile(code, f"{path.relative_to(ROOT)}:{line}", "exec")
            if why is None:
                exec(compiled, namespace)  # noqa: S102 - running the docs is the point
    finally:
        for registry, before in saved:
            for name in set(registry) - before:
                registry.unregister(name)
