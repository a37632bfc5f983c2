"""The figures a run writes beside its records, and the plot style every figure shares.

A shift run writes shift_accuracy.png and shift_drop_heatmap.png (`plot_accuracy`, `plot_drop_heatmap`), a
frontier run frontier.png (`plot_frontier`); the report (report/plots.py) draws the same figures again for its
page, in the same colours, markers and hatches (`colour`, `marker`, `hatch`, `pyplot`), and adds its own.

Functions named `*_figure` return a matplotlib figure (None when there is nothing to draw). matplotlib is
imported inside the functions: it is slow to import and only plotting needs it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5")
# Second cues beside colour (print, colour blindness). 7 markers against 8 colours: the i-th series' pair
# (colour, marker) repeats only after 56 series; bars past the 8th colour get a hatch.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


def hatch(i: int) -> str:
    return HATCHES[(i // len(PALETTE)) % len(HATCHES)]


def pyplot(report: bool = False):
    """matplotlib.pyplot on the Agg backend; `report` also sets the report's font size."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if report:
        plt.rcParams.update({"svg.hashsalt": "mdlm-probe", "font.size": 9, "figure.max_open_warning": 0})
    return plt


def at_key(when: Any) -> tuple[int, float, str]:
    """Sort key for `at` labels: committed fractions ("0.5") numerically, then step triggers ("step3")."""
    s = str(when)
    try:
        return (0, float(s), s)
    except ValueError:
        digits = "".join(ch for ch in s if ch.isdigit())
        return (1, float(digits or 0), s)


# ----------------------------------------------------------------------------------------- shift run PNGs
def plot_accuracy(rows: list[dict[str, Any]], path: Path | str) -> None:
    """Write `shift_accuracy_figure(rows)` to `path` (the shift run's shift_accuracy.png)."""
    plt = pyplot()
    fig = shift_accuracy_figure(rows)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def shift_accuracy_figure(rows: list[dict[str, Any]]):
    """Shifted accuracy against the shifted fraction (0 = the clean decodes), band = the paired drop's 95% CI.

    `rows` are `summarize` rows (ckpt, mode, fraction, at, acc_clean, acc_shifted, drop_lo, drop_hi). Small
    multiples: a row of panels per `at`, a column per mode, so no two settings share a line style; within
    a panel each checkpoint has its own colour and marker. Positional rows (fraction "pos:...") are left out.
    """
    plt = pyplot()
    rows = [r for r in rows if not isinstance(r["fraction"], str)]
    modes = sorted({r["mode"] for r in rows}) or ["none"]
    ats = sorted({r["at"] for r in rows}, key=at_key) or ["-"]
    ckpts = sorted({r["ckpt"] for r in rows})
    fig, axes = plt.subplots(len(ats), len(modes), figsize=(3.4 * len(modes) + 2.4, 2.6 * len(ats) + 0.5),
                             squeeze=False, sharex=True, sharey=True, constrained_layout=True)
    for i, at in enumerate(ats):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            for k, ckpt in enumerate(ckpts):
                mine = [r for r in rows if (r["ckpt"], r["mode"], r["at"]) == (ckpt, mode, at)]
                if not mine:
                    continue
                clean = float(mine[0]["acc_clean"])
                pts = {0.0: (clean, clean, clean)}  # fraction -> (accuracy, band low, band high)
                for r in mine:
                    if float(r["fraction"]) > 0:
                        pts[float(r["fraction"])] = (r["acc_shifted"], clean - r["drop_hi"], clean - r["drop_lo"])
                xs = sorted(pts)
                # Markers shrink with k: where checkpoints coincide the earlier one still shows around the later.
                ax.plot(xs, [pts[x][0] for x in xs], color=colour(k), marker=marker(k),
                        ms=max(3.0, 6.0 - k), label=ckpt)
                ax.fill_between(xs, [pts[x][1] for x in xs], [pts[x][2] for x in xs], color=colour(k), alpha=0.12,
                                linewidth=0)
            ax.set_title(f"{mode} · at {at}")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            if i == len(ats) - 1:
                ax.set_xlabel("shifted fraction of the response")
            if j == 0:
                ax.set_ylabel("accuracy")
    fig.suptitle("accuracy after a shift (band: paired 95% CI of the drop; fraction 0 = clean)", fontsize="medium")
    handles = {}  # every checkpoint once, also those missing from the top-right panel
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    labels = sorted(handles, key=ckpts.index)
    axes[0][-1].legend([handles[k] for k in labels], labels, fontsize=7, frameon=False, loc="upper left",
                       bbox_to_anchor=(1, 1))
    return fig


def drop_heatmap_figure(rows: list[dict[str, Any]]):
    """Paired accuracy drop over fraction x at: one panel per checkpoint (rows) and mode (columns).

    `rows` are `summarize` rows (keys ckpt, mode, fraction, at, drop); fraction 0 and positional rows are
    left out. Returns the matplotlib figure, or None when nothing is left to draw.
    """
    plt = pyplot()
    rows = [r for r in rows if not isinstance(r["fraction"], str) and float(r["fraction"]) > 0
            and r["drop"] is not None and not math.isnan(r["drop"])]
    if not rows:
        return None
    ckpts = list(dict.fromkeys(r["ckpt"] for r in rows))
    modes = sorted({r["mode"] for r in rows})
    fr = sorted({float(r["fraction"]) for r in rows})
    ats = sorted({r["at"] for r in rows}, key=at_key)
    fig, axes = plt.subplots(len(ckpts), len(modes), squeeze=False, constrained_layout=True,
                             figsize=(1.5 + 1.6 * max(len(ats), 2) * len(modes), 0.6 + 0.9 * max(len(fr), 2) * len(ckpts)))
    vmax = max([abs(r["drop"]) for r in rows] + [0.05])  # symmetric colours: red = accuracy lost
    for i, ckpt in enumerate(ckpts):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            grid = np.full((len(fr), len(ats)), np.nan)  # (fractions, ats)
            for r in rows:
                if r["ckpt"] == ckpt and r["mode"] == mode:
                    grid[fr.index(float(r["fraction"])), ats.index(r["at"])] = r["drop"]
            im = ax.imshow(grid, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", origin="lower")
            for y in range(len(fr)):
                for x in range(len(ats)):
                    if not np.isnan(grid[y, x]):
                        ax.text(x, y, f"{grid[y, x]:+.2f}", ha="center", va="center", fontsize=7,
                                color="white" if abs(grid[y, x]) > 0.6 * vmax else "black")
            ax.set_xticks(range(len(ats)), [str(a) for a in ats])
            ax.set_yticks(range(len(fr)), [f"{f:g}" for f in fr])
            ax.set_title(f"{ckpt} · {mode}", fontsize=9)
            if i == len(ckpts) - 1:
                ax.set_xlabel("at (committed fraction or step)")
            if j == 0:
                ax.set_ylabel("fraction")
    fig.colorbar(im, ax=axes, shrink=0.8, label="accuracy drop (clean - shifted)")
    return fig


def plot_drop_heatmap(rows: list[dict[str, Any]], path: Path | str) -> bool:
    """Write the drop heatmap to `path`; False (and no file, a stale one removed) when no fraction > 0 ran."""
    fig = drop_heatmap_figure(rows)
    if fig is None:
        Path(path).unlink(missing_ok=True)
        return False
    plt = pyplot()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------------------- frontier
def overlap_offsets(points: list[tuple[float, float]], spread: float = 10.0) -> list[tuple[float, int]]:
    """Horizontal offsets (points) that put markers side by side where they would hide each other: points
    closer than 3% of the x range and 0.02 in accuracy form a group, centred on their true position. Each
    point gets (x offset, its rank in its group), the rank lifting its label above the others'."""
    xs = [x for x, _ in points]
    tol = 0.03 * ((max(xs) - min(xs)) or max(abs(max(xs)), 1.0)) if xs else 0.0
    groups: list[list[int]] = []
    for i, (x, y) in enumerate(points):
        g = next((g for g in groups if abs(points[g[0]][0] - x) <= tol and abs(points[g[0]][1] - y) <= 0.02), None)
        (g.append(i) if g is not None else groups.append([i]))
    out = [(0.0, 0)] * len(points)
    for g in groups:
        for j, i in enumerate(g):
            out[i] = ((j - (len(g) - 1) / 2) * spread, j)
    return out


def frontier_figure(rows: list[dict[str, Any]]):
    """Accuracy (Wilson 95% CI) against tokens/s and against tokens per forward, a point per decoding mode;
    Pareto-optimal modes are ringed and joined by a step line (rows: frontier.run_frontier's)."""
    plt = pyplot()
    from matplotlib import transforms  # noqa: PLC0415 - matplotlib loads only to plot (see above)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, constrained_layout=True)
    for ax, speed, label in ((axes[0], "tokens_per_second", "output tokens / s"),
                             (axes[1], "tokens_per_forward", "output tokens per forward")):
        shifts = overlap_offsets([(r[speed], r["accuracy"]) for r in rows])
        ax.scatter([r[speed] for r in rows], [r["accuracy"] for r in rows], s=0)  # the axis limits: offset artists set none
        ax.margins(x=0.12)
        for i, r in enumerate(rows):
            # modes that land on the same spot (dual+threshold and threshold, say) sit side by side, labelled
            at = transforms.offset_copy(ax.transData, fig=fig, x=shifts[i][0], y=0, units="points")
            err = [[max(0.0, r["accuracy"] - r["ci"][0])], [max(0.0, r["ci"][1] - r["accuracy"])]]
            ax.errorbar([r[speed]], [r["accuracy"]], yerr=err, fmt=marker(i), color=colour(i), capsize=3,
                        label=r["mode"], transform=at)
            ax.annotate(r["mode"], (r[speed], r["accuracy"]), xycoords=at, xytext=(5, 3 + 8 * shifts[i][1]),
                        textcoords="offset points", fontsize=6, color=colour(i))
            if r[f"pareto_{speed}"]:
                ax.plot([r[speed]], [r["accuracy"]], "o", ms=14, mfc="none", mec="black", transform=at)
        front = sorted((r[speed], r["accuracy"]) for r in rows if r[f"pareto_{speed}"])
        if len(front) > 1:
            ax.step([x for x, _ in front], [y for _, y in front], where="post", color="black", lw=0.8, alpha=0.5)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (Wilson 95% CI)")
    axes[0].set_ylim(0, 1.02)
    axes[1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1), title="ringed: Pareto")
    return fig


def plot_frontier(rows: list[dict[str, Any]], path: Path | str) -> None:
    """Write `frontier_figure(rows)` to `path` (the frontier run's frontier.png)."""
    plt = pyplot()
    fig = frontier_figure(rows)
    fig.savefig(path, dpi=120)
    plt.close(fig)
