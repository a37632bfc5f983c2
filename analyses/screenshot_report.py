"""Open a report in headless Chromium with networking off, take a full-page screenshot, check it.

    python analyses/screenshot_report.py reports/demo [--out shot.png] [--width 1400]

Asserts that every <img> decoded (complete, naturalWidth > 0), that the browser requested nothing but
file: and data: URLs, and that the HTML names no http(s) URL in src/href/url(). Talks to Chromium over
the DevTools protocol with the standard library only (a minimal websocket client below). Exit 0 when
all checks pass, 1 when one fails, 2 when the report or Chromium is missing.

Needs the Debian package `chromium` (or set CHROMIUM=/path/to/chrome).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         # Networking off: every host resolves to nothing and any proxy use hits a closed port.
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=127.0.0.1:9",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


# ----------------------------------------------------------------------------------------- static check
class _Urls(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "srcset", "poster", "data", "action") and v:
                self.urls.append((tag, k, v))
            if k == "style" and v:
                self.urls += [(tag, "style url()", u) for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", v)]


def external_urls(html: str) -> list[str]:
    """URLs in the page that would leave the machine (http, https, protocol-relative, ftp, ws)."""
    p = _Urls()
    p.feed(html)
    css = [("style", "url()", u) for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", html)]
    bad = []
    for tag, attr, url in p.urls + css:
        if re.match(r"\s*(https?:|ftp:|wss?:|//)", url, re.I):
            bad.append(f"<{tag} {attr}={url[:80]}>")
    if re.search(r"@import", html):
        bad.append("@import in CSS")
    return sorted(set(bad))


# ----------------------------------------------------------------------------------------- a tiny websocket client
class WebSocket:
    """Enough of RFC 6455 for the DevTools protocol: text frames out (masked), text frames in."""

    def __init__(self, url: str, timeout: float = 60.0):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        if not m:
            raise ValueError(f"not a ws:// url: {url}")
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake closed")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"websocket handshake failed: {status!r}")
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self) -> str:
        parts = []
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if op == 0x8:
                raise ConnectionError("websocket closed by the browser")
            if op == 0x9:  # ping -> pong (masked, as a client must)
                m = os.urandom(4)
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + m + bytes(b ^ m[i % 4] for i, b in enumerate(payload)))
                continue
            if op in (0x1, 0x2, 0x0):
                parts.append(payload)
                if b0 & 0x80:
                    return b"".join(parts).decode()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class DevTools:
    """Commands and events over one page's websocket."""

    def __init__(self, ws: WebSocket):
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        for i, ev in enumerate(self.events):
            if ev["method"] == method:
                return self.events.pop(i)
        end = time.time() + timeout
        while time.time() < end:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(f"no {method} within {timeout}s")


# ----------------------------------------------------------------------------------------- the check
def screenshot(report_dir: Path, out: Path, width: int = 1400, timeout: float = 90.0) -> dict:
    """Load the report, screenshot the whole page; returns what was found (see `failures`)."""
    html_path = (report_dir / "index.html").resolve()
    html = html_path.read_text(encoding="utf-8")
    chrome = find_chromium()
    if chrome is None:
        raise FileNotFoundError("no chromium found (apt-get install chromium, or set CHROMIUM)")
    profile = Path(tempfile.mkdtemp(prefix="mdlm-probe-chromium-"))
    proc = subprocess.Popen([chrome, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ws = None
    try:
        port_file, end = profile / "DevToolsActivePort", time.time() + timeout
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if proc.poll() is not None or time.time() > end:
                raise RuntimeError(f"chromium did not start (exit {proc.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t.get("type") == "page")
        ws = WebSocket(page["webSocketDebuggerUrl"], timeout=timeout)
        dt = DevTools(ws)
        dt.call("Network.enable")
        dt.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                uploadThroughput=-1)
        dt.call("Page.enable")
        dt.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        dt.call("Page.navigate", url=html_path.as_uri())
        dt.wait_for("Page.loadEventFired", timeout=timeout)
        images = dt.call("Runtime.evaluate", returnByValue=True, awaitPromise=True, expression="""
            Promise.all(Array.from(document.images).map(i => i.decode().then(() => true, () => false)))
              .then(() => Array.from(document.images).map(i => ({
                  src: i.src.slice(0, 40), ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth})))""")
        images = images["result"].get("value") or []
        metrics = dt.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = int(size["height"]) + 1
        dt.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))
        # Drain what is left so every request event is counted.
        dt.call("Runtime.evaluate", expression="1")
        requests = sorted({ev["params"]["request"]["url"][:100] for ev in dt.events
                           if ev["method"] == "Network.requestWillBeSent"})
    finally:
        if ws:
            ws.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    external = [u for u in requests if not u.startswith(("file:", "data:"))]
    failures = []
    if not images:
        failures.append("the page has no images")
    failures += [f"image did not decode: {i['src']}" for i in images if not i["ok"]]
    failures += [f"external request: {u}" for u in external]
    failures += [f"external URL in the HTML: {u}" for u in external_urls(html)]
    return {"screenshot": str(out), "bytes": out.stat().st_size, "page_height": height, "images": len(images),
            "images_decoded": sum(i["ok"] for i in images), "requests": requests, "failures": failures}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="PNG path (default: REPORT_DIR/screenshot.png)")
    ap.add_argument("--width", type=int, default=1400)
    a = ap.parse_args(argv)
    if not (a.report_dir / "index.html").is_file():
        print(f"screenshot_report: no index.html in {a.report_dir}", file=sys.stderr)
        return 2
    if find_chromium() is None:
        print("screenshot_report: no chromium found (apt-get install chromium, or set CHROMIUM)", file=sys.stderr)
        return 2
    res = screenshot(a.report_dir, a.out or a.report_dir / "screenshot.png", a.width)
    print(json.dumps({k: v for k, v in res.items() if k != "requests"}, indent=2))
    print(f"requests: {len(res['requests'])} ({', '.join(sorted({u.split(':')[0] for u in res['requests']}))})")
    for f in res["failures"]:
        print("FAIL:", f)
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
