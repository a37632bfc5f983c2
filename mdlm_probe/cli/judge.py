"""`mdlm-probe judge RUN_DIR --baseline ... --judge-config ... --judge-url ... --judge-model ...`: Arena-Hard-Auto
judging of an `eval arena-hard` or `shift --benchmark arena-hard` run (a thin layer over runs/arena.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.runs.arena import run_judge
from mdlm_probe.tasks.arena_judge import Endpoint, load_judge_config
from .options import console, err_console


def judge_command(
    run_dir: Path = typer.Argument(..., help="An `eval arena-hard` or `shift --benchmark arena-hard` run directory."),
    baseline: str = typer.Option(..., "--baseline", help="The baseline's answers: an Arena-Hard model_answer file "
                                 "(e.g. data/arena-hard-v0.1/model_answer/gpt-4-0314.jsonl), another run directory, "
                                 "or `clean` (a shift run's conditions against their own clean answers)."),
    judge_config: Path = typer.Option(..., "--judge-config", help="Arena-Hard-Auto's judge config: legacy "
                                      "config/judge_config.yaml, or main's config/arena-hard-v0.1.yaml (its system "
                                      "prompt is read from the checkout's utils/judge_utils.py)."),
    judge_system_file: Optional[Path] = typer.Option(None, "--judge-system-file",
                                                     help="A text file with the judge's system prompt (overrides the config's)."),
    judge_url: str = typer.Option(..., "--judge-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
    judge_model: str = typer.Option(..., "--judge-model", help="The model name served at --judge-url."),
    key_env: str = typer.Option("OPENAI_API_KEY", "--judge-key-env", help="Environment variable holding the API key "
                                "(sent as a Bearer token when set)."),
    parallel: int = typer.Option(8, "--parallel", help="Judge calls in flight at once."),
    method: str = typer.Option("legacy", "--method", help="legacy: Bradley-Terry with bootstrap percentiles (the v0.1 "
                               "leaderboard, 95%); main: main's plain bootstrap mean (90%). Both are in summary.json."),
    rounds: int = typer.Option(100, "--rounds", help="Bootstrap rounds (Arena-Hard: 100)."),
    seed: int = typer.Option(42, "--seed", help="Bootstrap seed (numpy's legacy generator, as Arena-Hard seeds it)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Judge the first N questions only."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds per judge request."),
    retries: int = typer.Option(3, "--retries", help="Retries of a failed call (connection errors, timeouts, 429, 5xx), "
                                "with exponential backoff."),
    backoff: float = typer.Option(2.0, "--backoff", help="Seconds before the first retry (doubled each time)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print how many judge calls would be made, and stop."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: a bar on "
                                            "a terminal, else a line every few seconds)."),
):
    """Judge open-ended answers against a baseline as Arena-Hard-Auto does; win rates with bootstrap CIs."""
    if retries < 0 or timeout <= 0 or rounds < 1:
        raise BadInput("--retries must be >= 0, --timeout > 0 and --rounds >= 1")
    cfg = load_judge_config(judge_config, judge_system_file)
    ep = Endpoint(url=judge_url, model=judge_model, api_key=os.environ.get(key_env) or None, timeout=timeout,
                  retries=retries, backoff=backoff)
    say = lambda s: err_console.print(s, highlight=False, soft_wrap=True)  # noqa: E731
    s = run_judge(run_dir, baseline=baseline, cfg=cfg, endpoint=ep, parallel=parallel, method=method, rounds=rounds,
                  seed=seed, limit=limit, dry_run=dry_run, log=say,
                  progress="auto" if progress is None else ("bar" if progress else "off"))
    if dry_run:
        return
    level = "95%" if method == "legacy" else "90%"
    for m, r in s["models"].items():
        wr = "n/a" if r["win_rate"] is None else \
            f"{100 * r['win_rate']:.1f}% [{100 * r['lower']:.1f}, {100 * r['upper']:.1f}]"
        console.print(f"[bold]{m}[/] vs {r['baseline']}: win rate {wr} ({level}, {method}); games {r['judged']}/"
                      f"{r['games']} judged, {r['no_verdict']} without a verdict, {r['failed']} failed",
                      highlight=False, soft_wrap=True)
    for p in s["pairs"]:
        console.print(f"{p['shifted']} - {p['clean']}: {_pp(p['diff'])} [{_pp(p['lower'])}, {_pp(p['upper'])}] "
                      f"(paired over {p['n']} questions; {len(p['changed'])} changed)", highlight=False, soft_wrap=True)
    console.print(s["summary_file"], highlight=False, soft_wrap=True)
    if any(r["failed"] for r in s["models"].values()):
        say("some games failed (recorded, not scored); rerun the same command to retry only those")


def _pp(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:+.1f} pp"


def register(app: typer.Typer) -> None:
    app.command(name="judge")(judge_command)
