"""Progress of a long run (eval, shift, demo): done / total, rate and ETA.

On a terminal it is a rich bar; in a log (stderr redirected to a file, CI) it is one plain line every few
seconds, so a long run is never silent and a log shows how far it got.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

EVERY = 5.0  # seconds between two plain lines


def duration(seconds: float) -> str:
    """12 s, 3m05s, 1h02m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def say(line: str) -> None:
    """One progress line on stderr (what a run is about to do), beside the Progress lines."""
    print(line, file=sys.stderr, flush=True)


def starting_note(workers: int) -> str:
    """The note while worker processes start and nothing is finished yet (each imports torch, loads the model
    and decodes a whole first batch before its first record: half a minute on a busy CPU)."""
    return f"starting {workers} worker{'s' if workers != 1 else ''}: loading the model, decoding the first batch"


class Progress:
    """`update(done, note)` as items finish; `close()` at the end. Started with `done` > 0 (a resumed run),
    it first says how many were done before.

    mode: "bar" (rich bar on stderr), "lines" (a line through `log`, default stderr, every `every`
    seconds, also while one long batch decodes, and when done), "off", or "auto" (a bar on a
    terminal, else lines). Lines come from a background thread until `close()`."""

    def __init__(self, label: str, total: int, done: int = 0, *, mode: str = "auto", unit: str = "samples",
                 every: float = EVERY, log: Callable[[str], None] | None = None):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.label, self.total, self.done, self.start_done, self.mode = label, total, done, done, mode
        self.unit, self.every, self.note, self.ended = unit, every, "", False
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        if done and mode != "off":  # a rerun picks up where a killed run stopped: say so, and how far it was
            self.log(f"{label}: resuming: {done} of {total} {unit} done before, kept")
        self.t0 = self.last = time.perf_counter()
        if mode == "bar":
            self.bar = RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[rate]} " + unit + "/s"), TextColumn("{task.fields[note]}"),
                                    TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
                                    transient=False)
            self.task = self.bar.add_task(label, total=total, completed=done, rate="-", note="")
            self.bar.start()
        self._stop = threading.Event()
        if mode == "lines" and every > 0:
            threading.Thread(target=self._heartbeat, daemon=True).start()

    def _heartbeat(self) -> None:
        """A line every `every` seconds even when nothing finished (a batch of long decodes)."""
        while not self._stop.wait(self.every):
            if time.perf_counter() - self.last >= self.every and not self.ended:
                self.last = time.perf_counter()
                self.log(self.line())

    def rate(self) -> float:
        el = time.perf_counter() - self.t0
        return (self.done - self.start_done) / el if el > 0 else 0.0

    def line(self) -> str:
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        r = self.rate()
        eta = duration((self.total - self.done) / r) if r > 0 and self.done < self.total else "-"
        note = f" · {self.note}" if self.note else ""
        return (f"{self.label}: {self.done}/{self.total} {self.unit}{pct} · {r:.2f} {self.unit}/s{note} · "
                f"ETA {eta} · {duration(time.perf_counter() - self.t0)} so far")

    def update(self, done: int, note: str = "") -> None:
        self.done, self.note = done, note
        if self.mode == "bar":
            self.bar.update(self.task, completed=done, rate=f"{self.rate():.2f}", note=note)
        elif self.mode == "lines":
            now = time.perf_counter()
            end = done >= self.total and not self.ended
            if end or (now - self.last >= self.every and done < self.total):
                self.last, self.ended = now, self.ended or end
                self.log(self.line())

    def close(self) -> None:
        self._stop.set()
        if self.mode == "bar":
            self.bar.stop()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
