"""A scripted OpenAI-compatible chat server on 127.0.0.1 for the Arena-Hard judging tests (and the documented
plumbing check): it reads the two answers out of the test template (tests/fixtures/arena_hard/judge_*) and
answers with a verdict, so its verdicts are a function of the texts, never of the order asked.

Default rule: the longer answer wins ("strong" when longer by more than 20 characters), equal lengths tie.
Markers inside an answer script failures: "#500" (HTTP 500), "#garbage" (no verdict), "#malformed" (not JSON),
"#slow" (sleeps past a short client timeout). `script(a, b, body)` replaces the rule: it returns the reply text,
or an int HTTP status. Every request is kept in `requests`.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answers(user: str) -> tuple[str, str]:
    """(answer A, answer B) from a user message built with the tests' template."""
    a = user.split("[ANSWER A]\n", 1)[1].split("\n[END A]", 1)[0]
    b = user.split("[ANSWER B]\n", 1)[1].split("\n[END B]", 1)[0]
    return a, b


def by_length(a: str, b: str, body: dict) -> str | int:
    for text in (a, b):
        if "#500" in text:
            return 500
        if "#garbage" in text:
            return "I cannot decide."
        if "#malformed" in text:
            return -1
        if "#slow" in text:
            time.sleep(1.5)
    d = len(a) - len(b)
    label = "A=B" if d == 0 else ("A>>B" if d > 20 else "A>B") if d > 0 else ("B>>A" if d < -20 else "B>A")
    return f"Compared by length. My final verdict is: [[{label}]]"


class ScriptedJudge:
    def __init__(self, script=by_length):
        self.script, self.requests, self.lock = script, [], threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body)
                user = next(m["content"] for m in body["messages"] if m["role"] == "user")
                reply = outer.script(*answers(user), body)
                if isinstance(reply, int) and reply > 0:
                    self.send_response(reply)
                    self.end_headers()
                    return
                payload = b"<html>oops</html>" if reply == -1 else json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *a: None  # a client that timed out (the "#slow" case) is expected
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "ScriptedJudge":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
