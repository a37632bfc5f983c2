"""A scripted OpenAI-compatible chat server on 127.0.0.1 for the Arena-Hard judging tests (and the documented
plumbing check): it reads the two answers out of the test template (tests/fixtures/arena_hard/judge_*) and
answers with a verdict, so its verdicts are a function of the texts, never of the order asked.

Default rule: the longer answer wins ("strong" when longer by more than 20 characters), equal lengths tie.
Markers inside an answer script failures: "#500" (HTTP 500), "#garbage" (no verdict), "#malformed" (not JSON),
"#slow" (sleeps past a short client timeout). `script(a, b, body)` replaces the rule: it returns the reply text,
an int HTTP status, or bytes sent as the raw reply. Every request's body is kept in `requests` (the loopback
server itself is tests/helpers/chat_server.py).
"""

from __future__ import annotations

import time

from chat_server import ChatServer


def answers(user: str) -> tuple[str, str]:
    """(answer A, answer B) from a user message built with the tests' template."""
    a = user.split("[ANSWER A]\n", 1)[1].split("\n[END A]", 1)[0]
    b = user.split("[ANSWER B]\n", 1)[1].split("\n[END B]", 1)[0]
    return a, b


def by_length(a: str, b: str, body: dict) -> str | int | bytes:
    for text in (a, b):
        if "#500" in text:
            return 500
        if "#garbage" in text:
            return "I cannot decide."
        if "#malformed" in text:
            return b"<html>oops</html>"
        if "#slow" in text:
            time.sleep(1.5)
    d = len(a) - len(b)
    label = "A=B" if d == 0 else ("A>>B" if d > 20 else "A>B") if d > 0 else ("B>>A" if d < -20 else "B>A")
    return f"Compared by length. My final verdict is: [[{label}]]"


class ScriptedJudge(ChatServer):
    def __init__(self, script=by_length):
        self.script = script
        super().__init__(self._reply)

    def _reply(self, body: dict) -> str | int | bytes:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        return self.script(*answers(user), body)
