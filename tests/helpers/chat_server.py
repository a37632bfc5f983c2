"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for the judge tests (tests/tasks/test_judge.py)
and the Arena-Hard judging tests (tests/helpers/arena_server.py builds its scripted judge on it).

`reply(body)` gets each request's JSON body and returns the answer: a str is sent as the assistant's message in a
chat-completions reply, an int as that HTTP status with no body, bytes as the raw 200 body (to send malformed
replies). Every request is kept: its body in `requests`, its path in `paths`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class ChatServer:
    def __init__(self, reply: Callable[[dict], str | int | bytes]):
        self.reply, self.requests, self.paths, self.lock = reply, [], [], threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body)
                    outer.paths.append(self.path)
                reply = outer.reply(body)
                if isinstance(reply, int):
                    self.send_response(reply)
                    self.end_headers()
                    return
                payload = reply if isinstance(reply, bytes) else json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *a: None  # a client that timed out (the slow cases) is expected
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "ChatServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
