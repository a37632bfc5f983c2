"""docs/architecture.md in code: one package per layer, imports run downwards only, no import cycle.

The layer table in docs/architecture.md names, for each layer, the top-level packages (and the few
top-level modules) of `mdlm_probe` in it. A module may import anything in its own layer or below; every
import counts here, a lazy one inside a function too. Separately, the modules' top-level imports (what
runs when a module is imported: not imports inside functions, nor those under `if TYPE_CHECKING:`) must
form no cycle. And no function is longer than 80 lines, no module longer than 600 (docs/architecture.md).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mdlm_probe"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


# ----------------------------------------------------------------------------------------- reading imports
def source_files(package: Path = PACKAGE) -> list[Path]:
    """The package's own Python files: not the shipped checkpoints' modeling files (`checkpoints/NAME/*.py`,
    a model's remote code, loaded as data by `trust_remote_code`, not imported as part of mdlm_probe)."""
    return [f for f in sorted(package.rglob("*.py")) if "checkpoints" not in f.relative_to(package).parts[:1]]


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is named by its __init__.py)."""
    out = {}
    for f in source_files(package):
        parts = [package.name, *f.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module, top_level_only: bool) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, or only those that run when the module is imported (module and class bodies,
    branches and try blocks; not function bodies, not `if TYPE_CHECKING:`)."""
    if not top_level_only:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(path: Path, modules: dict[str, Path], top_level_only: bool = False,
                     package: Path = PACKAGE) -> set[str]:
    """The package's modules a file imports (relative imports resolved). `from P import name` imports the
    module P.name when there is one, else P; a package imported only as the parent of a submodule is not
    counted (Python runs its __init__ first, but that is not an import this file chose)."""
    rel = path.relative_to(package.parent).with_suffix("")
    pkg = list(rel.parts[:-1])  # the package a relative import starts from
    names: set[str] = set()

    def nearest(name: str) -> str | None:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else None

    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8")), top_level_only):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        names |= {m for t in targets if (m := nearest(t)) is not None}
    return names


def test_the_import_reader_sees_relative_lazy_and_type_checking_imports(tmp_path):
    pkg = tmp_path / "mdlm_probe"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "__init__.py").write_text("")
    (pkg / "cli" / "errors.py").write_text("")
    (pkg / "low.py").write_text("x = 1\n")
    (pkg / "lib.py").write_text("from typing import TYPE_CHECKING\nfrom .low import x\n"
                                "if TYPE_CHECKING:\n    from . import cli\n"
                                "def f():\n    from .cli.errors import errors\n")
    modules = module_files(pkg)
    assert set(modules) == {"mdlm_probe", "mdlm_probe.cli", "mdlm_probe.cli.errors", "mdlm_probe.low", "mdlm_probe.lib"}
    every = imported_modules(pkg / "lib.py", modules, package=pkg)
    assert every == {"mdlm_probe.low", "mdlm_probe.cli", "mdlm_probe.cli.errors"}
    assert imported_modules(pkg / "lib.py", modules, top_level_only=True, package=pkg) == {"mdlm_probe.low"}


# ----------------------------------------------------------------------------------------- layers
def layers() -> dict[str, int]:
    """Top-level package or module of mdlm_probe -> layer number, from the table in docs/architecture.md."""
    table = ARCHITECTURE.read_text().split("| layer | packages |", 1)[1].split("\n\n", 1)[0]
    out = {}
    for line in table.splitlines():
        m = re.match(r"\| (\d+) [a-z &]+ \| (.+) \|$", line)
        if m:
            for name in m.group(2).replace("\\_", "_").split(","):
                assert name.strip() not in out, f"{name.strip()} listed twice"
                out[name.strip()] = int(m.group(1))
    return out


def top_level(module: str) -> str:
    """The top-level package or module a module belongs to: mdlm_probe.runs.shift -> runs; mdlm_probe -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_is_in_one_layer():
    table = layers()
    present = {top_level(m) for m in module_files()}
    assert sorted(present - set(table)) == [], "packages or modules missing from docs/architecture.md"
    assert sorted(set(table) - present) == [], "docs/architecture.md names packages that do not exist"


def test_every_module_imports_only_its_layer_and_below():
    """core -> adapters -> decoding -> tasks -> runs -> report -> cli: lazy imports inside functions count too."""
    table, modules = layers(), module_files()
    upward = []
    for name, f in modules.items():
        src = top_level(name)
        for imp in sorted(imported_modules(f, modules)):
            dst = top_level(imp)
            if table.get(dst, -1) > table.get(src, -1):
                upward.append(f"{name} (layer {table[src]} {src}) imports {imp} (layer {table[dst]} {dst})")
    assert not upward, upward


# ----------------------------------------------------------------------------------------- cycles
def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (or one importing itself), sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def test_the_cycle_finder_finds_cycles():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"a"}, "b": set()}) == [["a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    """Module-level imports form no cycle (imports inside functions may be lazy and are not counted)."""
    modules = module_files()
    graph = {name: imported_modules(f, modules, top_level_only=True) for name, f in modules.items()}
    cycles = import_cycles(graph)
    assert not cycles, [" <-> ".join(c) for c in cycles]


def test_a_command_module_imports_first_in_a_fresh_interpreter():
    """Scripts may import a command module before the command line (analyses/ did)."""
    code = "import mdlm_probe.cli.errors as e, mdlm_probe.cli.demo as d; print(e.errors.__name__, d.demo.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["errors", "demo"], out.stderr[-500:]


# ----------------------------------------------------------------------------------------- sizes
MAX_FUNCTION_LINES = 80  # the house style (docs/architecture.md): small functions, small modules
MAX_MODULE_LINES = 600


def oversized(package: Path = PACKAGE) -> list[str]:
    """Every function (its docstring and body counted, decorators not) over MAX_FUNCTION_LINES lines and every
    module over MAX_MODULE_LINES lines, as 'path: what (n lines)'."""
    found = []
    for f in source_files(package):
        src = f.read_text(encoding="utf-8")
        rel = f.relative_to(package.parent)
        if (n := len(src.splitlines())) > MAX_MODULE_LINES:
            found.append(f"{rel}: module ({n} lines)")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if (n := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                    found.append(f"{rel}: {node.name} at line {node.lineno} ({n} lines)")
    return found


def test_the_size_check_finds_long_functions_and_modules(tmp_path):
    pkg = tmp_path / "mdlm_probe"
    pkg.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    (pkg / "ok.py").write_text(f"def fits():\n{body}")  # exactly the limit
    (pkg / "long.py").write_text(f"class C:\n    async def too_long(self):\n    {body.replace(chr(10), chr(10) + '    ')}"
                                 f"    y = 0\n")
    (pkg / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert oversized(pkg) == ["mdlm_probe/big.py: module (601 lines)",
                              f"mdlm_probe/long.py: too_long at line 2 ({MAX_FUNCTION_LINES + 1} lines)"]


def test_no_function_over_80_lines_and_no_module_over_600():
    found = oversized()
    assert not found, found
