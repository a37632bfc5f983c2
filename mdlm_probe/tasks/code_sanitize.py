"""The `sanitize` post-processor of Fast-dLLM's and Dream's HumanEval evaluations, reimplemented from its
algorithm (the extraction rules fast-dllm:postprocess_code, dream:postprocess_code and
dream-fork:build_predictions_instruct in tasks/extraction.py).

The three references share one algorithm (NVlabs/Fast-dLLM@24cc59e llada/sanitize.py, DreamLM/Dream@fac0a7f
eval/sanitize.py and eval_instruct/lm_eval/tasks/humaneval/sanitize_utils.py):
1. normalise the text: tabs -> 4 spaces, CRLF/CR -> LF, strip, one final newline;
2. of its first 100 lines (str.splitlines), the window of consecutive lines that `ast.parse` accepts with the
   most non-blank lines (the first such window in (start, end) order wins a tie);
3. of that code's top-level statements keep: every import; each class, each function that contains a
   `return` somewhere, each assignment whose first target is a plain name (a later definition of a name
   replaces the earlier one but keeps its place; a function without `return` is not a definition at all);
4. of the definitions, only those reachable from the entry point through the names they mention (a name
   `x` adds "x"; an attribute `a.b` adds "b" and is not looked into further);
5. imports, then the kept definitions, each written back with `ast.unparse`, joined by newlines.
Step 5 makes the output depend on the Python version (ast.unparse's formatting changes between releases):
the golden test compares with the reference's output made on Python 3.11.7, and runs on 3.11 only.

Model-written code is only parsed here, never run (the sandbox runs it).
"""

from __future__ import annotations

import ast

MAX_LINES = 100  # the reference looks at the first 100 lines only


def _normalise(text: str) -> str:
    return text.replace("\t", "    ").replace("\r\n", "\n").replace("\r", "\n").strip() + "\n"


def _parses(code: str) -> bool:
    # the reference catches SyntaxError and MemoryError; RecursionError/ValueError (which would stop the
    # reference's script) count as not parsable here, so one absurd output cannot stop a run
    try:
        ast.parse(code)
    except (SyntaxError, MemoryError, RecursionError, ValueError):
        return False
    return True


def longest_parsable(text: str) -> str:
    """The window of consecutive lines (of the first 100) that parses with the most non-blank lines."""
    lines = text.splitlines()[:MAX_LINES]
    filled = [1 if ln.strip() else 0 for ln in lines]
    best, best_n = "", 0
    for i in range(len(lines)):
        if sum(filled[i:]) <= best_n:  # no window from here on can hold more lines (only more counts)
            break
        n = 0
        for j in range(i, len(lines)):
            n += filled[j]
            # only a strictly larger count replaces the best: smaller windows need no parse
            if n > best_n and _parses(code := "\n".join(lines[i:j + 1])):
                best, best_n = code, n
    return best


def _mentioned(node: ast.AST) -> set[str]:
    """Names a definition refers to: every Name's id, every Attribute's attribute name (its owner is not
    visited), searched below `node`."""
    out: set[str] = set()
    todo = [node]
    while todo:
        for child in ast.iter_child_nodes(todo.pop()):
            if isinstance(child, ast.Name):
                out.add(child.id)
            elif isinstance(child, ast.Attribute):
                out.add(child.attr)
            else:
                todo.append(child)
    return out


def _definitions(tree: ast.Module) -> tuple[list[ast.stmt], dict[str, ast.stmt]]:
    imports, defs = [], {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
        elif isinstance(node, ast.ClassDef):
            defs[node.name] = node
        elif isinstance(node, ast.FunctionDef):  # async functions are not definitions for the reference
            if any(isinstance(n, ast.Return) for n in ast.walk(node)):
                defs[node.name] = node
        elif isinstance(node, ast.Assign) and node.targets and isinstance(node.targets[0], ast.Name):
            defs[node.targets[0].id] = node
    return imports, defs


def _reachable(start: str, uses: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(uses.get(name, set()) - seen)
    return seen


def sanitize(text: str, entry_point: str | None = None) -> str:
    """The reference's sanitize(text, entry_point): imports + the definitions the entry point reaches."""
    try:
        tree = ast.parse(longest_parsable(_normalise(text)))
        imports, defs = _definitions(tree)
        keep = _reachable(entry_point, {k: _mentioned(v) for k, v in defs.items()}) if entry_point else set(defs)
        return "\n".join([ast.unparse(n) for n in imports] + [ast.unparse(v) for k, v in defs.items() if k in keep])
    except RecursionError:  # nesting too deep to write back (the reference would stop): nothing usable
        return ""


def first_python_block(text: str) -> str:
    """What the references sanitize after the prompt: the text after the first "```python\\n" (all of it
    when there is none), up to the next fence."""
    return text.split("```python\n", 1)[-1].split("```")[0]


def sanitized_completion(text: str, prompt: str, entry_point: str) -> str:
    """Fast-dLLM llada/postprocess_code.py:48, Dream eval/postprocess_code.py:31 and the Dream fork's
    build_predictions_instruct (eval_instruct/lm_eval/tasks/humaneval/utils.py:40-52): the problem's prompt,
    a newline and the first python block of the response, sanitized with the entry point."""
    return sanitize(prompt + "\n" + first_python_block(text), entry_point)
