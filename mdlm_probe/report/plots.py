"""The report's figures: accuracy bars and failure-pattern rates, and the shift and frontier figures of
`runs.figures` (the PNGs the runs write), all as base64 PNGs for the page.

Functions named `*_figure` return a matplotlib figure (None when there is nothing to draw); `png_data_uri`
turns one into the report's base64 PNG without metadata, so rebuilding a report gives the same bytes.
"""

from __future__ import annotations

import base64
import io

import pandas as pd

from mdlm_probe.runs.figures import (colour, drop_heatmap_figure, frontier_figure, hatch, pyplot,  # noqa: F401
                                     shift_accuracy_figure)


def png_data_uri(fig) -> str:
    """A figure as a base64 PNG data URI, without metadata (byte-identical across rebuilds); closes it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ----------------------------------------------------------------------------------------- report figures
def accuracy_figure(acc: pd.DataFrame):
    """Accuracy per benchmark, a bar per checkpoint with its Wilson CI (`acc`: the report's accuracy table)."""
    plt = pyplot(report=True)
    benches = sorted(acc["benchmark"].unique())
    arms = sorted(acc["checkpoint"].unique())
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(benches) * max(1, len(arms)) * 0.5 + 2), 3.0))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        sub = acc[acc["checkpoint"] == arm].set_index("benchmark")
        xs, ys, err = [], [], [[], []]
        for j, b in enumerate(benches):
            if b in sub.index:
                row = sub.loc[b]
                xs.append(j + (i - (len(arms) - 1) / 2) * width)
                ys.append(row["accuracy"])
                err[0].append(max(0.0, row["accuracy"] - row["ci_low"]))
                err[1].append(max(0.0, row["ci_high"] - row["accuracy"]))
        ax.bar(xs, ys, width=width, yerr=err, capsize=3, label=arm, color=colour(i), hatch=hatch(i))
    ax.set_xticks(range(len(benches)), benches)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (Wilson 95% CI)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def patterns_figure(t: pd.DataFrame, series: list[tuple[str, str, str]]):
    """Failure-pattern rates: a row of panels per condition (eval records, a shift run's clean or shifted
    decodes, ...), a column per rate (share of all records, share of wrong answers), a bar per pattern and
    checkpoint, one colour per checkpoint throughout.

    `t`: the report's pattern table (checkpoint = series label, pattern, rate, rate_wrong, records);
    `series`: (label, checkpoint, condition) for each label in `t`. None when no pattern was found.
    """
    if not t["records"].sum():
        return None
    plt = pyplot(report=True)
    pats = list(dict.fromkeys(t["pattern"]))
    conds = list(dict.fromkeys(c for _, _, c in series))
    ckpts = sorted({a for _, a, _ in series})
    width_in = min(14.0, max(8.0, 0.6 * len(pats) * (len(ckpts) + 1) + 1.5))
    fig, axes = plt.subplots(len(conds), 2, squeeze=False, sharex=True, sharey=True, constrained_layout=True,
                             figsize=(width_in, 1.6 * len(conds) + 1.0))
    width = 0.8 / max(1, len(ckpts))
    for i, cond in enumerate(conds):
        for ax, col, what in ((axes[i][0], "rate", "share of all records"),
                              (axes[i][1], "rate_wrong", "share of wrong answers")):
            for label, ckpt, c in series:
                if c != cond:
                    continue
                k = ckpts.index(ckpt)
                sub = t[t["checkpoint"] == label].set_index("pattern")
                ys = [float(sub.loc[p, col]) if p in sub.index and not pd.isna(sub.loc[p, col]) else 0.0 for p in pats]
                ax.bar([j + (k - (len(ckpts) - 1) / 2) * width for j in range(len(pats))], ys, width=width,
                       color=colour(k), hatch=hatch(k), label=ckpt)
            ax.set_title(f"{cond}: {what}", fontsize="medium")
            ax.grid(axis="y", alpha=0.3)
        axes[i][0].set_ylabel("rate")
    for ax in axes[-1]:
        ax.set_xticks(range(len(pats)), pats, rotation=25, ha="right")
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=colour(k), hatch=hatch(k)) for k in range(len(ckpts))]
    axes[0][1].legend(handles, ckpts, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return fig
