"""Is the Hugging Face Hub reachable? Asked once, quickly, before a Hub client would sit through its retries.

`hub_reachable()` is one TCP connection (2 s at most) to the Hub or the HTTPS proxy; when it fails,
`go_offline()` puts `datasets` and `huggingface_hub` in offline mode so they read their local cache at
once. Data lookups (tasks/benchmarks), model loading (adapters) and `lm-eval` all ask here.
"""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlparse

TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or HF_DATASETS_OFFLINE) is set to a true value."""
    return any(os.environ.get(v, "").strip().lower() in TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = 2.0) -> bool:
    """False when offline mode is set, or when a TCP connection to the Hub (HF_ENDPOINT, or the HTTPS
    proxy when one is set) fails within `timeout` seconds."""
    if hub_offline():
        return False
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def go_offline() -> None:
    """Put the Hub clients (datasets, huggingface_hub; transformers asks the latter) in offline mode for the rest
    of this process."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    # The libraries read the variables once, at import; if they are loaded already, tell them directly.
    for module, names in (("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")),
                          ("huggingface_hub.constants", ("HF_HUB_OFFLINE",))):
        mod = sys.modules.get(module)
        for name in names:
            if mod is not None and hasattr(mod, name):
                setattr(mod, name, True)
