"""`mdlm-probe judge`: Arena-Hard-Auto's pairwise judging of a run's open-ended answers against a baseline,
and its win rates (docs/arena_hard.md).

A run directory holds one model (an `eval arena-hard` run: its checkpoint) or several (a `shift` run: every
condition, `<ckpt>@clean` and `<ckpt>@<setting>`, is a model). Each model's answer to each question is judged
twice against the baseline's (game 1: A = baseline; game 2: A = model). The baseline is a `model_answer` file
in Arena-Hard-Auto's format (e.g. its gpt-4-0314.jsonl), another run directory, or `clean` (a shift run's
shifted conditions against their own clean answers).

Every game goes to `arena/judgments.jsonl` (appended and flushed) under a key made of the judge, the prompts
and the exact texts compared, so a rerun pays only for games it has no answer for: failed calls are retried,
answers without a verdict are kept (as Arena-Hard keeps them). Calls run concurrently in threads (a bounded
number in flight). `arena/summary.json` holds the win rates (legacy Bradley-Terry and main's plain mean,
core/winrate.py), the paired clean-vs-shifted difference per question, and the judge card, in `arena/vs_<baseline>/` (one folder per baseline, beside Arena-Hard-format judgments).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mdlm_probe.core import winrate
from mdlm_probe.core.cards import code_version
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.progress import Progress
from mdlm_probe.core.records import RecordWriter, iter_jsonl, read_objects
from mdlm_probe.core.rundir import SAMPLES, SHIFT, read_run_records
from mdlm_probe.core.stats import paired_bootstrap
from mdlm_probe.tasks.arena_judge import Endpoint, JudgeConfig, judge_game, legacy_rows, main_rows, sha256
from mdlm_probe.tasks.benchmarks.arena_hard import native_id, safe_name

ARENA_DIR, CACHE, SUMMARY, CARD = "arena", "judgments.jsonl", "summary.json", "judge_card.json"
STALL = 8  # consecutive unreachable-endpoint failures that stop a run (and say so) instead of failing every game


@dataclass
class Answers:
    """Models' answers to the same questions, and which baseline each is judged against."""
    questions: dict[str, tuple[str, str | None]]  # uid -> (question, category)
    models: dict[str, dict[str, str]]  # model -> uid -> answer
    baseline_of: dict[str, str] = field(default_factory=dict)  # model -> baseline name
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (clean model, shifted model) of a shift run


# ----------------------------------------------------------------------------------------- reading answers
def read_run(run_dir: Path) -> Answers:
    """The answers of an eval or shift run directory (records with the question, as `eval arena-hard` writes)."""
    if (run_dir / SHIFT).is_file():
        recs, shift = read_run_records(run_dir, SHIFT)[0], True  # shard files of unfinished runs too
    elif (run_dir / SAMPLES).is_file():
        recs, shift = read_run_records(run_dir, SAMPLES)[0], False
    else:
        raise BadInput(f"{run_dir}: not a run directory (no {SAMPLES} or {SHIFT})")
    qs: dict[str, tuple[str, str | None]] = {}
    models: dict[str, dict[str, str]] = defaultdict(dict)
    for r in recs:
        if "question" not in r:
            raise BadInput(f"{run_dir}: record {r['id']} has no question (judge runs of arena-hard only)")
        uid = native_id(r["id"])
        qs[uid] = (r["question"], (r.get("question_meta") or {}).get("category"))
        name = f"{r['ckpt']}@{r['id'].split('@', 1)[1]}" if shift and "@" in r["id"] else r["ckpt"]
        models[name][uid] = r.get("text") or ""
    pairs = [(m.split("@")[0] + "@clean", m) for m in models if shift and not m.endswith("@clean")]
    return Answers(qs, dict(models), pairs=[p for p in pairs if p[0] in models])


def read_answer_file(path: Path) -> dict[str, str]:
    """uid -> answer text of a model_answer JSONL in main's (messages) or legacy's (choices) layout."""
    out = {}
    for n, obj in iter_jsonl(path, "baseline answer file", " (expected Arena-Hard model_answer JSONL)"):
        uid = obj.get("uid", obj.get("question_id")) if isinstance(obj, dict) else None
        try:
            text = obj["messages"][-1]["content"]["answer"] if "messages" in obj else \
                obj["choices"][0]["turns"][0]["content"]
        except (KeyError, IndexError, TypeError):
            text = None
        if uid is None or not isinstance(text, str):
            raise BadInput(f"{path}:{n}: not an Arena-Hard model_answer line (uid/question_id and the answer)")
        out[str(uid)] = text  # the last line wins, as in Arena-Hard
    if not out:
        raise BadInput(f"{path}: holds no answers")
    return out


def attach_baseline(ans: Answers, baseline: str) -> tuple[str, str]:
    """Set every model's baseline; returns (its name, a description). Missing baseline answers are one
    BadInput line."""
    name = "clean"
    if baseline == "clean":
        if not ans.pairs:
            raise BadInput("--baseline clean needs a shift run (shifted conditions and their clean answers)")
        ans.baseline_of = {s: c for c, s in ans.pairs}
        ans.models = {m: a for m, a in ans.models.items() if m in ans.baseline_of or m.endswith("@clean")}
        desc = "clean (each shifted condition against its own clean answers)"
    else:
        p = Path(baseline)
        if p.is_dir():
            other = read_run(p)
            if len(other.models) != 1:
                raise BadInput(f"--baseline {p}: a baseline run must hold one model ({len(other.models)} found)")
            name, answers = next(iter(other.models.items()))
        elif p.is_file():
            name, answers = p.stem, read_answer_file(p)
        else:
            raise BadInput(f"--baseline {baseline}: no such file or run directory")
        if name in ans.models:
            name = f"baseline:{name}"
        ans.models[name] = answers
        ans.baseline_of = {m: name for m in ans.models if m != name}
        desc = f"{name} ({p})"
    for m, b in ans.baseline_of.items():
        missing = [q for q in ans.models[m] if q not in ans.models[b]]
        if missing:
            raise BadInput(f"baseline {b} has no answer to {len(missing)} of {m}'s {len(ans.models[m])} questions "
                           f"(e.g. {', '.join(missing[:3])}); nothing was judged")
    return name, desc


# ----------------------------------------------------------------------------------------- games
def game_key(cfg: JudgeConfig, ep: Endpoint, system: str, user: str) -> str:
    """What makes a judgment reusable: the judge and its settings, and the exact messages."""
    raw = json.dumps([ep.model, cfg.version, cfg.temperature, cfg.max_tokens, cfg.patterns, sha256(system),
                      sha256(user)])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def plan_games(ans: Answers, cfg: JudgeConfig, ep: Endpoint) -> list[dict[str, Any]]:
    """Every game to have: model x question x (game 1, game 2), in model then question order."""
    games = []
    for m, b in ans.baseline_of.items():
        for uid in ans.models[m]:
            q, cat = ans.questions.get(uid, ("", None))
            for g, (a_text, b_text) in ((1, (ans.models[b][uid], ans.models[m][uid])),
                                        (2, (ans.models[m][uid], ans.models[b][uid]))):
                system = cfg.system_for(cat)
                key = game_key(cfg, ep, system, cfg.user_message(q, a_text, b_text))
                games.append({"key": key, "model": m, "baseline": b, "uid": uid, "game": g, "question": q,
                              "a": a_text, "b": b_text, "category": cat})
    return games


def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """key -> last judgment line (a later line wins: a retried failure replaces the failure)."""
    return {j["key"]: j for j in read_objects(path, ("key",))[0]} if path.is_file() else {}


def _one(cfg: JudgeConfig, ep: Endpoint, g: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = judge_game(cfg, ep, g["question"], g["a"], g["b"], g["category"])
    return {"key": g["key"], "model": g["model"], "baseline": g["baseline"], "uid": g["uid"], "game": g["game"],
            "judge_model": ep.model, **res, "seconds": round(time.perf_counter() - t0, 3)}


def run_games(todo: list[dict[str, Any]], cfg: JudgeConfig, ep: Endpoint, cache: Path, parallel: int,
              progress: str, log: Callable[[str], None]) -> tuple[int, int]:
    """Judge `todo` with at most `parallel` calls in flight, each result flushed as it comes;
    (done, failed). Stops early, with BadInput, when the endpoint stops answering (nothing made is lost)."""
    done = failed = streak = 0
    bar = Progress(f"judge {ep.model}", len(todo), mode=progress, unit="games")
    pending, it = set(), iter(todo)
    stalled = False
    try:
        with RecordWriter(cache) as w, ThreadPoolExecutor(max_workers=parallel) as pool:
            for g in it:  # fill the pool, then one new call per finished one
                pending.add(pool.submit(_one, cfg, ep, g))
                if len(pending) >= parallel:
                    break
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    j = f.result()
                    w.write(j)
                    done += 1
                    failed += j["error"] is not None
                    streak = streak + 1 if (j["error"] or "").startswith("cannot reach") else 0
                    stalled = stalled or streak >= STALL
                    if not stalled:
                        nxt = next(it, None)
                        if nxt is not None:
                            pending.add(pool.submit(_one, cfg, ep, nxt))
                bar.update(done, f"{failed} failed" if failed else "")
    finally:
        bar.close()
    if stalled:
        raise BadInput(f"the judge at {ep.endpoint} stopped answering ({STALL} calls in a row failed); {done} "
                       f"games are saved in {cache}; rerun to judge the {len(todo) - done + failed} left")
    return done, failed


# ----------------------------------------------------------------------------------------- statistics
def outcomes(ans: Answers, games: list[dict[str, Any]], got: dict[str, dict[str, Any]]) -> dict[str, dict[str, list]]:
    """model -> uid -> [game 1 result, game 2 result] (a cache line, or None when not judged yet)."""
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(lambda: [None, None]))
    for g in games:
        out[g["model"]][g["uid"]][g["game"] - 1] = got.get(g["key"])
    return out


def _label(j: dict[str, Any] | None) -> str | None:
    return None if j is None or j.get("error") else j.get("label")


def model_stats(per_q: dict[str, list]) -> dict[str, Any]:
    """Counts of one model's games, its legacy battle rows and main's score rows (by question)."""
    games = [j for pair in per_q.values() for j in pair]
    rows, scores = [], {}
    for uid, (g1, g2) in per_q.items():
        rows += legacy_rows(_label(g1), 1) + legacy_rows(_label(g2), 2)
        s = main_rows(_label(g1), _label(g2))
        if s is not None:
            scores[uid] = s
    return {"games": len(games), "judged": sum(j is not None and not j.get("error") for j in games),
            "failed": sum(j is not None and bool(j.get("error")) for j in games),
            "missing": sum(j is None for j in games),
            "no_verdict": sum(j is not None and not j.get("error") and j.get("label") is None for j in games),
            "rows": rows, "scores": scores}


def summarize(ans: Answers, games: list[dict[str, Any]], got: dict[str, dict[str, Any]], *, method: str = "legacy",
              rounds: int = winrate.ROUNDS, seed: int = winrate.SEED) -> dict[str, Any]:
    """Both methods' win rates per model (`method` is the headline) and each clean/shifted pair's paired
    difference (mean per-question score of shifted minus clean, paired bootstrap over questions)."""
    if method not in winrate.METHODS:
        raise BadInput(f"--method {method!r}: expected one of {', '.join(winrate.METHODS)}")
    per = outcomes(ans, games, got)
    stats = {m: model_stats(per[m]) for m in ans.baseline_of}
    battle_rows = [(m, w) for m in ans.baseline_of for w in stats[m]["rows"]]
    legacy = winrate.legacy_bt(battle_rows, rounds, seed) if battle_rows else {}
    main = winrate.main_plain({m: [x for v in s["scores"].values() for x in v] for m, s in stats.items()},
                              rounds, seed)
    models = {}
    for m, s in stats.items():
        head = (legacy if method == "legacy" else main).get(m)
        models[m] = {"baseline": ans.baseline_of[m], "questions": len(ans.models[m]),
                     **{k: s[k] for k in ("games", "judged", "no_verdict", "failed", "missing")},
                     "win_rate": head.score if head else None, "lower": head.lower if head else None,
                     "upper": head.upper if head else None,
                     "legacy_bt": legacy[m].to_dict() if m in legacy else None,
                     "main_plain": main[m].to_dict() if m in main and main[m].n else None,
                     "counts": winrate.counts((m, w) for w in s["rows"]).get(m),
                     "questions_scored": len(s["scores"])}
    pairs = []
    for clean, shifted in ans.pairs:
        if clean not in stats or shifted not in stats or ans.baseline_of.get(clean) != ans.baseline_of.get(shifted):
            continue
        a = winrate.per_question_means(stats[clean]["scores"])
        b = winrate.per_question_means(stats[shifted]["scores"])
        uids, xa, xb = winrate.paired_questions(a, b)
        diff, lo, hi = paired_bootstrap(xa, xb)
        pairs.append({"clean": clean, "shifted": shifted, "n": len(uids), "clean_mean": sum(xa) / len(xa) if xa else None,
                      "shifted_mean": sum(xb) / len(xb) if xb else None, "diff": diff, "lower": lo, "upper": hi,
                      "changed": [u for u, x, y in zip(uids, xa, xb) if x != y]})
    return {"method": method, "rounds": rounds, "seed": seed, "models": models, "pairs": pairs}


# ----------------------------------------------------------------------------------------- Arena-Hard's own files
def export_judgments(out: Path, ans: Answers, games: list[dict[str, Any]], got: dict[str, dict[str, Any]],
                     judge_model: str, category: str | None) -> Path:
    """`arena/model_judgment/<judge>/<model>.jsonl` in main's layout (a failed game is null)."""
    folder = out / "model_judgment" / safe_name(judge_model)
    folder.mkdir(parents=True, exist_ok=True)
    per = outcomes(ans, games, got)
    for m, by_q in per.items():
        lines = []
        for uid, pair in by_q.items():
            gs = [None if j is None or j.get("error") else
                  {"score": j.get("label"), "judgment": {"answer": j.get("judgment")}} for j in pair]
            lines.append({"uid": uid, "category": ans.questions.get(uid, ("", None))[1] or category,
                          "judge": judge_model, "model": m, "baseline": ans.baseline_of[m], "games": gs})
        (folder / f"{safe_name(m)}.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                                                     encoding="utf-8")
    return folder


def judge_card(cfg: JudgeConfig, ep: Endpoint, baseline: str, parallel: int) -> dict[str, Any]:
    commit, dirty = code_version()
    return {"judge_model": ep.model, "endpoint": ep.endpoint, "api_key": "set" if ep.api_key else None,
            "baseline": baseline, "parallel": parallel, "retries": ep.retries, "timeout": ep.timeout,
            "prompts": cfg.card(), "code_commit": commit, "code_dirty": dirty}


# ----------------------------------------------------------------------------------------- the run
def run_judge(run_dir: Path | str, *, baseline: str, cfg: JudgeConfig, endpoint: Endpoint, parallel: int = 8,
              method: str = "legacy", rounds: int = winrate.ROUNDS, seed: int = winrate.SEED,
              limit: int | None = None, progress: str = "auto", dry_run: bool = False,
              log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Judge a run against `baseline`; returns the summary (also in RUN_DIR/arena/summary.json)."""
    run_dir = Path(run_dir)
    if parallel < 1:
        raise BadInput(f"--parallel {parallel}: must be at least 1")
    if method not in winrate.METHODS:
        raise BadInput(f"--method {method!r}: expected one of {', '.join(winrate.METHODS)}")
    ans = read_run(run_dir)
    if limit is not None:
        keep = list(ans.questions)[:limit]
        ans.models = {m: {u: a for u, a in v.items() if u in keep} for m, v in ans.models.items()}
    name, desc = attach_baseline(ans, baseline)
    out = run_dir / ARENA_DIR
    folder = out / f"vs_{safe_name(name)}"
    games = plan_games(ans, cfg, endpoint)
    got = read_cache(out / CACHE)
    todo = [g for g in games if g["key"] not in got or got[g["key"]].get("error")]
    n_models = len(ans.baseline_of)
    log(f"judge: {n_models} model(s) x {len(games) // max(1, 2 * n_models)} questions x 2 games against "
        f"{desc}: {len(games)} games, {len(games) - len(todo)} in the cache, {len(todo)} to ask "
        f"(at least {len(todo)} judge calls, at most {parallel} in flight)")
    card = judge_card(cfg, endpoint, desc, parallel)
    if dry_run:
        return {"planned": len(games), "todo": len(todo), "card": card}
    if todo and not endpoint.reachable():
        raise BadInput(f"the judge at {endpoint.endpoint} does not answer (nothing to connect to); start it "
                       "(e.g. `vllm serve MODEL`) or fix --judge-url")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    done, failed = run_games(todo, cfg, endpoint, out / CACHE, parallel, progress, log) if todo else (0, 0)
    got = read_cache(out / CACHE)
    summary = {"run_dir": str(run_dir), "judge": card, "asked": done, "failed_now": failed,
               **summarize(ans, games, got, method=method, rounds=rounds, seed=seed)}
    (folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    export_judgments(folder, ans, games, got, endpoint.model, None)
    return {**summary, "summary_file": str(folder / SUMMARY)}


def read_summaries(run_dir: Path | str) -> dict[str, dict[str, Any]]:
    """baseline folder name -> summary, for every judging of a run (the report reads them)."""
    out = {}
    for p in sorted((Path(run_dir) / ARENA_DIR).glob(f"vs_*/{SUMMARY}")):
        try:
            out[p.parent.name.removeprefix("vs_")] = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return out
