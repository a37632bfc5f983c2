"""Fast-dLLM's / Dream's `sanitize`, reimplemented (tasks/code_sanitize.py): each rule of the algorithm on a small
case worked out by hand. The reference's own outputs are compared in tests/tasks/test_protocol_goldens.py."""

from __future__ import annotations

import pytest

from mdlm_probe.tasks.code_sanitize import first_python_block, longest_parsable, sanitize, sanitized_completion


@pytest.mark.parametrize("text, entry, want", [
    # imports, then what the entry point reaches through the names it mentions; a stray call is dropped
    ("import os\ndef f(x):\n    return g(x)\ndef g(y):\n    return y\ndef unused():\n    return 0\nprint(f(1))", "f",
     "import os\ndef f(x):\n    return g(x)\ndef g(y):\n    return y"),
    # an attribute adds its attribute name (v), not its owner (k)
    ("def f():\n    return k.v\nclass v:\n    pass\nk = 3\n", "f", "def f():\n    return k.v\nclass v:\n    pass"),
    # a function without `return` is no definition: the earlier one stays
    ("def f():\n    return 1\ndef f():\n    pass\n", "f", "def f():\n    return 1"),
    # a later definition with `return` replaces the earlier in its place
    ("def g():\n    return 0\ndef f():\n    return g()\ndef g():\n    return 2\n", "f",
     "def g():\n    return 2\ndef f():\n    return g()"),
    # assignments to a plain name are definitions; async functions are not
    ("def f(x):\n    return h() + a()\nh = lambda: 1\nasync def a():\n    return 1\n", "f",
     "def f(x):\n    return h() + a()\nh = lambda: 1"),
    # prose around the code: the longest parsable window; tabs become four spaces (ast.unparse re-indents)
    ("here is code\ndef f(x):\n\treturn x\nthanks!", "f", "def f(x):\n    return x"),
])
def test_sanitize_rules(text, entry, want):
    assert sanitize(text, entry) == want


def test_only_the_first_100_lines_are_read():
    defs = "\n".join(f"def a{i}():\n    return {i}" for i in range(60))  # 120 lines
    assert sanitize(defs, "a49") == "def a49():\n    return 49"  # lines 99-100
    assert sanitize(defs, "a50") == ""  # line 101 on: never seen


def test_longest_window_counts_non_blank_lines_and_the_first_wins_a_tie():
    assert longest_parsable("x = 1\n\n\n\ny = (\nz = 2\nw = 3") == "z = 2\nw = 3"  # 2 lines beat 1 (blanks don't count)
    assert longest_parsable("a = 1\n)\nb = 2") == "a = 1"  # a tie: the first window
    assert longest_parsable("no code here at all") == ""


def test_the_completion_is_the_first_python_block_after_the_prompt():
    assert first_python_block("Sure:\n```python\ncode\n```\n```python\nother\n```") == "code\n"
    assert first_python_block("plain\n```\nrest") == "plain\n"  # no python fence: up to any fence
    prompt = "def add(a, b):\n    \"\"\"Add.\"\"\"\n"
    want = 'def add(a, b):\n    """Add."""\n    return a + b'
    assert sanitized_completion("    return a + b\n", prompt, "add") == want
    assert sanitized_completion("I cannot.", prompt, "add") == ""  # the prompt's stub has no return
