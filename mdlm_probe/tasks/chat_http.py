"""One request to an OpenAI-compatible chat-completions endpoint (e.g. `vllm serve`), shared by the pairwise
judge (tasks/judge.py) and the Arena-Hard judge (tasks/arena_judge.py). No retries here: the callers decide."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass

from mdlm_probe.core.exceptions import BadInput


def chat_endpoint(url: str) -> str:
    """The chat-completions URL of a server URL (`/chat/completions` appended unless already there)."""
    if not url.startswith(("http://", "https://")):
        raise BadInput(f"--judge-url {url!r} is not an http(s) URL")
    base = url.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


@dataclass
class ChatReply:
    """The reply's content, or an error: `status` is the HTTP status of an HTTP error, else None."""
    content: str | None
    error: str | None = None
    status: int | None = None


def post_chat(endpoint: str, body: dict, timeout: float, api_key: str | None = None) -> ChatReply:
    """POST one chat request; never raises for a failed call (unreachable, HTTP error, malformed reply)."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = resp.read()
    except urllib.error.HTTPError as e:
        return ChatReply(None, f"HTTP {e.code}", e.code)
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
        return ChatReply(None, f"cannot reach {endpoint}: {getattr(e, 'reason', e)}")
    try:
        content = json.loads(payload)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        return ChatReply(None, f"malformed response: {payload[:80]!r}")
    return ChatReply(content)
