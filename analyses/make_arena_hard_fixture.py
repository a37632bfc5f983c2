"""Make tests/fixtures/arena_hard/: Arena-Hard-Auto's own verdict parsing and win-rate statistics on scripted input.

The reference is lmarena/arena-hard-auto. Two of its versions compute the win rate differently, and both are run:

* `main` at 196f6b826783b3da7310e361a805fa36f0be83f3 (2025-06-20, the newest commit of its main branch, after the
  v2.0 release): `show_result.py` bootstraps the mean per-game score (no Bradley-Terry) unless style control is
  asked for, which fits Bradley-Terry with torch L-BFGS (`utils/math_utils.py`).
* `legacy` at 3071ef95d913bb5cd632641db336a3b6c7fe4bdd (2025-03-19, the last commit before the v2.0 rewrite; the
  code behind the published v0.1 leaderboards with gpt-4-0314 as baseline): Bradley-Terry by scikit-learn
  logistic regression on an Elo scale (`utils_math.py`), 100 bootstrap rounds, 2.5/97.5 percentiles.

None of that code is in this repository. It runs in separate virtual environments, main's borrowing this one's
torch (the requirements pin nothing that show_result uses, so versions of mid-2025 are used for main and of 2024
for legacy, which needs numpy < 2 for its np.NAN; the versions are recorded in the fixture):

    # two exported trees of the repository (any way of getting the files at those commits will do)
    git -C arena-hard-auto worktree add /tmp/aha 196f6b826783b3da7310e361a805fa36f0be83f3
    git -C arena-hard-auto worktree add /tmp/aha-legacy 3071ef95d913bb5cd632641db336a3b6c7fe4bdd
    python -m venv --system-site-packages /tmp/aha-venv
    /tmp/aha-venv/bin/pip install numpy==2.2.6 pandas==2.2.3 scikit-learn==1.6.1 tqdm==4.67.1 pyyaml==6.0.2 \
        requests==2.32.4 shortuuid==1.0.13 boto3==1.38.46
    python -m venv --system-site-packages /tmp/aha-legacy-venv
    /tmp/aha-legacy-venv/bin/pip install numpy==1.26.4 pandas==2.2.3 scikit-learn==1.5.2 scipy==1.13.1 \
        tqdm==4.67.1 pyyaml==6.0.2 requests==2.32.4
    /tmp/aha-venv/bin/python analyses/make_arena_hard_fixture.py --aha /tmp/aha --aha-legacy /tmp/aha-legacy \
        --python-legacy /tmp/aha-legacy-venv/bin/python

(boto3 and shortuuid are only there because main's `gen_judgment.py` imports them at module level.) The script
checks the git blob hashes of the reference files it imports, builds the scripted judgments (three models against the
baseline gpt-4-0314 on 40 questions, both orders, strong and weak verdicts, ties, verdicts the judge did not give
and judge calls that failed) and per-answer style metadata, writes them in each version's own file formats into a
scratch folder, and runs each version in its own subprocess (both have a top-level module named `utils`) from that
folder, since both read `data/...` relative to the working directory. What is imported and called:

* main: `show_result.load_judgments`, `print_leaderboard` (plain), `print_leaderboard_with_style_features` (length,
  markdown, both), with `format_confidence_interval` and `bootstrap_pairwise_model` wrapped to record their
  arguments exactly; and `utils.math_utils.one_hot_encode` / `fit_pairwise_model` / `bootstrap_pairwise_model` /
  `to_winrate_probabilities` for Bradley-Terry without style features (a function of its library that its
  show_result only calls with style features; labelled as such in the fixture).
* legacy: `show_result.get_battles_from_judgment`, `utils_math.compute_mle_elo`, `get_bootstrap_result`,
  `get_win_rate_column`, `predict_win_rate`, and the style-control functions `construct_style_matrices`, `fit_bt`,
  `get_bootstrap_result_style_control`; the few lines of its `__main__` that assemble the table (score from the
  full-data fit, lower/upper = np.percentile 2.5/97.5 of the bootstrap ratings) are repeated here.
* both: `gen_judgment.get_score` on the verdict texts in VERDICT_TEXTS (written for this fixture), with the regex
  patterns read from each version's own judge config; and what each show_result makes of every parsed label.

Main never seeds its bootstrap; legacy seeds numpy's global generator with 42 once, when utils_math is imported,
and its plain path draws nothing before the bootstrap. Here numpy's global generator is seeded with SEED = 42 right
before each bootstrap (and torch's, although L-BFGS draws nothing), so the legacy plain numbers are what its
show_result prints for these battles (all judgments are in one file, so the row order does not depend on glob),
and everything is reproducible with the recorded library versions. The full-data point estimates (legacy
Bradley-Terry, main's full-data L-BFGS fit, the plain mean) do not depend on the seed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from reference_runs import blob_of, write_fixture

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "arena_hard"
REPOSITORY = "lmarena/arena-hard-auto"
VERSIONS = {
    "main": {"commit": "196f6b826783b3da7310e361a805fa36f0be83f3", "date": "2025-06-20",
             "files": {"show_result.py": "aa9f2a2bcb28e7ce82496dc9bfca412a1ff2e386",  # git blob hashes
                       "utils/math_utils.py": "ed1f94188bf8de3c76cc94f4540183bc1a66b862",
                       "utils/judge_utils.py": "21de9f77b5ae8f7d6d2fe31715235eb59570cdb6",
                       "gen_judgment.py": "0f6854cd478c1a63c9391659cd18639f2e29e7dd",
                       "utils/completion.py": "15ba7df57836f76c5e21c2018017424fcf9cf1be",
                       "config/arena-hard-v0.1.yaml": "926a7c93b5e2876fb829022c7d6a732fc557a69c",
                       "config/arena-hard-v2.0.yaml": "a3096afaf0f05a6f57cf6ce1336a1b8dadf99029"}},
    "legacy": {"commit": "3071ef95d913bb5cd632641db336a3b6c7fe4bdd", "date": "2025-03-19",
               "files": {"show_result.py": "21c5eb95f206934e67706cd0aa569a68b39d6f7f",
                         "utils_math.py": "8d2c7aa46666b4353052b5e75676ab2be18448a3",
                         "utils.py": "8bc7c406fcfe732999b40ae38229578ec785d604",
                         "gen_judgment.py": "6afa7544aa00914302989304c997ee1cc26841e9",
                         "config/judge_config.yaml": "e31c4f1e3b17bb94cb7d584630250e3f7eeb5796"}},
}
BENCH = "arena-hard-v0.1"  # main's JUDGE_SETTINGS maps this category to the baseline gpt-4-0314
JUDGE = "scripted-judge"
BASELINE = "gpt-4-0314"
SEED = 42
ROUNDS = 100  # both versions' default number of bootstrap rounds
N_QUESTIONS = 40

# Outcome probabilities from the model's side: much better, better, tie, worse, much worse.
PROFILES = {"model-strong": (0.35, 0.30, 0.15, 0.15, 0.05),
            "model-even": (0.10, 0.25, 0.30, 0.25, 0.10),
            "model-weak": (0.05, 0.10, 0.15, 0.35, 0.35)}
# Label per outcome in each order. Game 1: A = baseline, B = model; game 2: A = model, B = baseline.
GAME1 = ("B>>A", "B>A", "A=B", "A>B", "A>>B")
GAME2 = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
# (model, question index, game index) -> "none" (the judge answered without a verdict: score null) or
# "failed" (the judge call failed: the whole game is null in main's format, "$ERROR$" text in legacy's).
HOLES = {("model-strong", 7, 0): "none", ("model-strong", 33, 0): "failed", ("model-strong", 33, 1): "failed",
         ("model-even", 5, 1): "none", ("model-weak", 17, 0): "failed", ("model-weak", 28, 1): "none",
         ("model-weak", 36, 0): "none", ("model-weak", 36, 1): "none"}

# Judge outputs written for this fixture (not Arena-Hard's): what does each version's get_score make of them?
VERDICT_TEXTS = [
    ("strong_a", "Assistant A covers every case and B misses two. My final verdict is: [[A>>B]]"),
    ("weak_a", "A is a little clearer.\n\nMy final verdict is: [[A>B]]"),
    ("tie", "Both are correct and equally concise. My final verdict is tie: [[A=B]]"),
    ("weak_b", "B handles the edge case that A skips.\nFinal verdict: [[B>A]]"),
    ("strong_b", "A is wrong about the formula; B is right. My final verdict is: [[B>>A]]"),
    ("lower_weak_b", "final verdict: [[b>a]]"),
    ("lower_strong_a", "my final verdict is [[a>>b]]."),
    ("missing", "Both answers address the question; neither is clearly better overall."),
    ("empty", ""),
    ("two_different", "At first sight [[A>B]], but after checking the code B is right: [[B>A]]"),
    ("same_twice", "Verdict [[A>B]]. To restate, my final verdict is [[A>B]]"),
    ("strong_then_tie", "Draft verdict [[A>>B]]; revised after a second look: [[A=B]]"),
    ("single_brackets", "My final verdict is: [B>>A]"),
    ("double_then_single", "My final verdict is [[A>B]] (and the rubric item [B>A] does not change it)"),
    ("spaces_inside", "My final verdict is: [[ A>B ]]"),
    ("reversed_symbol", "My final verdict is: [[A<B]]"),
    ("b_equals_a", "My final verdict is: [[B=A]]"),
    ("letter_only", "My final verdict is: [[A]]"),
    ("mdlm_tie_letter", "Verdict: [[C]]"),
    ("bare_operator", "My final verdict is: [[>]]"),
    ("stray_single_letters", "Point [A] holds, point [B] does not; no overall verdict."),
    ("newline_inside", "My final verdict is: [[A>\nB]]"),
    ("prose_then_verdict", "Answer [1] cites [2]. My final verdict is: [[B>>A]]"),
]


def check_checkout(path: Path, version: str) -> None:
    for rel, want in VERSIONS[version]["files"].items():
        f = path / rel
        if not f.is_file():
            sys.exit(f"{path}: no {rel}; is this arena-hard-auto at {VERSIONS[version]['commit']}?")
        if blob_of(f) != want:
            sys.exit(f"{f}: git blob {blob_of(f)}, expected {want} (commit {VERSIONS[version]['commit']})")


def unit(key: str) -> float:
    """A deterministic number in [0, 1) from a string."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / 16 ** 12


def draw(probs: tuple[float, ...], u: float) -> int:
    acc = 0.0
    for i, p in enumerate(probs):
        acc += p
        if u < acc:
            return i
    return len(probs) - 1


def scripted() -> dict:
    uids = [f"q{i:02d}" for i in range(N_QUESTIONS)]
    judgments = []
    for model, probs in PROFILES.items():
        for qi, uid in enumerate(uids):
            games = []
            for g, labels in enumerate((GAME1, GAME2)):
                hole = HOLES.get((model, qi, g))
                if hole == "failed":
                    games.append(None)
                elif hole == "none":
                    games.append({"verdict": None})
                else:
                    games.append({"verdict": labels[draw(probs, unit(f"{model}|{uid}|{g}"))]})
            judgments.append({"uid": uid, "model": model, "games": games})
    # Style metadata per answer (token_len and markdown counts), deterministic; longer, more formatted answers
    # for the stronger models so that the style coefficients are not zero.
    scale = {BASELINE: 1.0, "model-strong": 1.6, "model-even": 1.0, "model-weak": 0.7}
    metadata = {}
    for model, s in scale.items():
        metadata[model] = {}
        for uid in uids:
            u = [unit(f"{model}|{uid}|style|{k}") for k in range(6)]
            metadata[model][uid] = {
                "token_len": int(80 + s * 400 * u[0]) + 1,
                "header_count": {"h1": 0, "h2": int(s * 3 * u[1]), "h3": int(s * 2 * u[2]), "h4": 0, "h5": 0, "h6": 0},
                "list_count": {"ordered": int(s * 6 * u[3]), "unordered": int(s * 8 * u[4])},
                "bold_count": {"**": int(s * 5 * u[5]), "__": 0},
            }
    return {
        "about": ("Scripted pairwise judgments for the Arena-Hard fixture "
                  "(made by analyses/make_arena_hard_fixture.py). "
                  "games[0]: A = baseline, B = model; games[1]: A = model, B = baseline. A game is {'verdict': label}, "
                  "{'verdict': null} when the judge answered without a parseable verdict, or null when the judge "
                  "call failed. metadata: per model and question, the style features Arena-Hard-Auto stores with "
                  "an answer (token_len and markdown counts)."),
        "benchmark": BENCH, "category": BENCH, "judge": JUDGE, "baseline": BASELINE,
        "models": list(PROFILES), "uids": uids, "judgments": judgments, "metadata": metadata,
    }


# ---------------------------------------------------------------- writing each version's own formats

def write_main_data(data: dict, work: Path) -> None:
    bench = work / "data" / BENCH
    (bench / "model_judgment" / JUDGE).mkdir(parents=True)
    (bench / "model_answer").mkdir(parents=True)
    with open(bench / "question.jsonl", "w") as f:
        for uid in data["uids"]:
            f.write(json.dumps({"uid": uid, "category": BENCH, "cluster": "scripted",
                                "prompt": f"question {uid}"}) + "\n")
    # one file for all models, so that the row order (which the bootstrap depends on) does not depend on glob
    with open(bench / "model_judgment" / JUDGE / "all.jsonl", "w") as f:
        for j in data["judgments"]:
            games = [None if g is None else {"score": g["verdict"], "judgment": {"answer": f"scripted {g['verdict']}"},
                                             "prompt": []} for g in j["games"]]
            f.write(json.dumps({"uid": j["uid"], "category": BENCH, "judge": JUDGE, "model": j["model"],
                                "baseline": BASELINE, "games": games}) + "\n")
    for model, per_q in data["metadata"].items():
        with open(bench / "model_answer" / f"{model}.jsonl", "w") as f:
            for uid, meta in per_q.items():
                f.write(json.dumps({"uid": uid, "ans_id": f"{model}-{uid}", "model": model,
                                    "messages": [{"role": "user", "content": f"question {uid}"},
                                                 {"role": "assistant", "content": {"answer": f"answer {model} {uid}"}}],
                                    "tstamp": 0.0, "metadata": meta}) + "\n")


def write_legacy_data(data: dict, work: Path) -> None:
    bench = work / "data" / BENCH
    (bench / "model_judgment" / JUDGE).mkdir(parents=True)
    (bench / "model_answer").mkdir(parents=True)
    with open(bench / "model_judgment" / JUDGE / "all.jsonl", "w") as f:
        for j in data["judgments"]:
            games = [{"user_prompt": "", "judgment": "$ERROR$" if g is None else f"scripted {g['verdict']}",
                      "score": None if g is None else g["verdict"]} for g in j["games"]]
            f.write(json.dumps({"question_id": j["uid"], "model": j["model"], "judge": JUDGE, "games": games}) + "\n")
    for model, per_q in data["metadata"].items():
        with open(bench / "model_answer" / f"{model}.jsonl", "w") as f:
            for uid, meta in per_q.items():
                f.write(json.dumps({"question_id": uid, "answer_id": f"{model}-{uid}", "model_id": model,
                                    "choices": [{"index": 0, "turns": [{"content": f"answer {model} {uid}",
                                                                        "token_len": meta["token_len"]}]}],
                                    "tstamp": 0.0, "conv_metadata": meta}) + "\n")


def versions() -> dict:
    import numpy
    import pandas
    out = {"python": platform.python_version(), "numpy": numpy.__version__, "pandas": pandas.__version__}
    for mod in ("torch", "sklearn", "scipy"):
        if mod in sys.modules:  # only what the run imported
            out[mod] = sys.modules[mod].__version__
    return out


def seed_all() -> None:
    import numpy as np
    np.random.seed(SEED)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(SEED)


def floats(x):
    """Plain floats/lists from numpy/torch/pandas values (full precision)."""
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


# ---------------------------------------------------------------- main (196f6b8)

# main's show_result slices the feature matrix [model one-hots | length, header, list, bold] as if the style
# columns came first: only "length markdown" (its documented, official setting) keeps the right columns.
DEFECTS = {
    "length": "show_result keeps all_features[:, :1] (the first model's one-hot column, not the length feature) "
              "and then drops the last column of the coefficients, leaving none: it raises. Not a reference.",
    "markdown": "show_result keeps all_features[:, 1:] (drops the first model's one-hot column, keeps the length "
                "feature) and reads coefs[:, :-3] as the model coefficients, so every model column is shifted by "
                "one and the length coefficient is read as a model's. Recorded as it runs; not a reference.",
}

def run_main(aha: Path, data: dict, work: Path) -> dict:
    import torch
    import yaml
    torch.set_num_threads(1)
    write_main_data(data, work)
    os.chdir(work)
    sys.path.insert(0, str(aha))
    import show_result as sr
    from utils import math_utils as mu
    import gen_judgment as gj

    quiet = contextlib.redirect_stdout(io.StringIO())
    calls: dict = {}

    fci = sr.format_confidence_interval

    def fci_spy(mean_scores, lower_scores, upper_scores, baseline=None):
        table = fci(mean_scores, lower_scores, upper_scores, baseline)
        calls["fci"] = {"mean": mean_scores.set_index("model")["scores"].astype(float).to_dict(),
                        "lower": lower_scores.set_index("model")["lower"].astype(float).to_dict(),
                        "upper": upper_scores.set_index("model")["upper"].astype(float).to_dict(),
                        "table": table.to_dict(orient="records")}
        return table

    bpm = sr.bootstrap_pairwise_model

    def bpm_spy(features, outcomes, loss_type="bt", num_round=100):
        coefs, eta = bpm(features, outcomes, loss_type=loss_type, num_round=num_round)
        calls["coefs"] = coefs
        return coefs, eta

    sr.format_confidence_interval, sr.bootstrap_pairwise_model = fci_spy, bpm_spy

    with quiet:
        battles = sr.load_judgments([JUDGE], BENCH)
    out: dict = {"commit": VERSIONS["main"]["commit"],
                 "n_score_rows": battles.groupby("model").size().astype(int).to_dict(),
                 "n_questions_kept": battles.groupby("model")["uid"].nunique().astype(int).to_dict(),
                 "mean_score_full_data": battles.assign(scores=battles.scores.astype(float))
                 .groupby("model")["scores"].mean().to_dict(),
                 "battles_scores": {m: [float(s) for s in g.scores] for m, g in battles.groupby("model", sort=True)}}

    seed_all()
    with quiet:
        sr.print_leaderboard(battles.copy(), BENCH)
    out["plain"] = {"what": "show_result.print_leaderboard: per model, 100 resamples (with replacement, within the "
                            "model) of its score rows; scores = mean of the 100 resample means, lower/upper = their "
                            "0.05/0.95 quantiles (pandas linear interpolation); the baseline is added at 50.0",
                    "seed": SEED, "rounds": ROUNDS, **calls.pop("fci")}

    out["style_control"] = {}
    for feats in (["length"], ["markdown"], ["length", "markdown"]):
        seed_all()
        calls.clear()
        try:
            with quiet:
                sr.print_leaderboard_with_style_features(battles.copy(), BENCH, BENCH, feats)
        except Exception as e:  # noqa: BLE001 - recording what their code raises
            out["style_control"]["+".join(feats)] = {"error": f"{type(e).__name__}: {e}",
                                                      "note": DEFECTS["+".join(feats)]}
            continue
        coefs = calls.pop("coefs")
        k = 4 if len(feats) == 2 else (1 if feats == ["length"] else 3)
        out["style_control"]["+".join(feats)] = {
            "seed": SEED, "rounds": ROUNDS,
            "what": "show_result.print_leaderboard_with_style_features: scores/lower/upper = 0.5/0.05/0.95 "
                    "quantiles over the 100 bootstrap fits of sigmoid(coef_model - coef_baseline)",
            **({"note": DEFECTS["+".join(feats)]} if "+".join(feats) in DEFECTS else {}),
            **calls.pop("fci"),
            "model_order": sorted(set(data["models"]) | {BASELINE}),
            "style_coef_median": floats(torch.quantile(coefs[:, -k:], 0.5, axis=0)),
            "coefs_bootstrap": floats(coefs)}

    # Bradley-Terry without style features, with the same library functions (show_result itself never does this)
    feats, models = mu.one_hot_encode(battles.model.tolist(), baseline=BASELINE)
    outcomes = torch.tensor(battles.scores.astype(float).tolist())
    torch.manual_seed(SEED)
    coef, _ = mu.fit_pairwise_model(feats, outcomes, loss_type="bt")
    wr = mu.to_winrate_probabilities(coef.unsqueeze(0), models, baseline_model=BASELINE)[0]
    seed_all()
    with quiet:
        boot, _ = mu.bootstrap_pairwise_model(feats, outcomes, loss_type="bt", num_round=ROUNDS)
    bwr = mu.to_winrate_probabilities(boot, models, baseline_model=BASELINE)
    out["bt_no_style"] = {
        "what": "utils.math_utils on one-hot features (+1 model, -1 baseline), outcomes = the score rows: "
                "fit_pairwise_model on all rows (torch L-BFGS, lr 0.1, max_iter 50, tolerances 1e-9, init 0.5) and "
                "bootstrap_pairwise_model (100 rounds of row indices from np.random.randint); win rate = "
                "to_winrate_probabilities. Not a show_result path: show_result fits BT only with style features.",
        "seed": SEED, "rounds": ROUNDS, "model_order": models, "coef_full_data": floats(coef),
        "winrate_full_data": dict(zip(models, floats(wr))),
        "winrate_boot_median": dict(zip(models, floats(torch.quantile(bwr, 0.5, axis=0)))),
        "winrate_boot_q05": dict(zip(models, floats(torch.quantile(bwr, 0.05, axis=0)))),
        "winrate_boot_q95": dict(zip(models, floats(torch.quantile(bwr, 0.95, axis=0))))}

    # verdict parsing
    patterns = yaml.safe_load(open(aha / "config" / "arena-hard-v0.1.yaml"))["regex_patterns"]
    assert patterns == yaml.safe_load(open(aha / "config" / "arena-hard-v2.0.yaml"))["regex_patterns"]
    parsed = {name: gj.get_score(text, patterns) for name, text in VERDICT_TEXTS}
    out["verdicts"] = {"regex_patterns": patterns, "parsed": parsed,
                       "show_result_scores": main_label_scores(
                           sr, sorted({p for p in parsed.values() if p is not None}), work)}
    return out


def main_label_scores(sr, labels: list[str], work: Path) -> dict:
    """What main's load_judgments makes of a label in either game (model-side score list, or the error)."""
    out = {}
    for i, label in enumerate(labels):
        res = {}
        for pos in (0, 1):
            d = work / "labels" / f"{i}_{pos}"
            jd = d / "data" / "b" / "model_judgment" / "j"
            jd.mkdir(parents=True)
            games = [{"score": "A=B"}, {"score": "A=B"}]
            games[pos] = {"score": label}
            (jd / "x.jsonl").write_text(json.dumps({"uid": "u", "model": "m", "category": "c", "games": games}) + "\n")
            cwd = os.getcwd()
            os.chdir(d)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    b = sr.load_judgments(["j"], "b")
                s = [float(x) for x in b.scores]
                # drop the sentinel tie of the other game: game 2's scores come first, then game 1's
                res[f"game{pos + 1}"] = s[1:] if pos == 0 else s[:-1]
            except Exception as e:  # noqa: BLE001 - recording what their code raises
                res[f"game{pos + 1}"] = f"{type(e).__name__}: {e}"
            finally:
                os.chdir(cwd)
        out[label] = res
    return out


# ---------------------------------------------------------------- legacy (3071ef9)

def run_legacy(aha: Path, data: dict, work: Path) -> dict:
    import re

    import numpy as np
    import yaml
    write_legacy_data(data, work)
    os.chdir(work)
    sys.path.insert(0, str(aha))
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        import show_result as sr
        import utils_math as um
        import gen_judgment as gj

    def table(bt, boot) -> dict:
        import pandas as pd
        stats = pd.DataFrame()
        for i, model in enumerate(bt.index):  # the lines of show_result's __main__ that build the table
            stats.at[i, "model"] = model
            stats.at[i, "score"] = bt[model]
            stats.at[i, "lower"] = np.percentile(boot[model], 2.5)
            stats.at[i, "upper"] = np.percentile(boot[model], 97.5)
        stats.sort_values(by="model", inplace=True)
        elo = {c: stats.set_index("model")[c].to_dict() for c in ("score", "lower", "upper")}
        wr = {c: dict(zip(stats.model, um.get_win_rate_column(stats, c, BASELINE).tolist()))
              for c in ("score", "lower", "upper")}
        exact = {c: um.predict_win_rate(elo[c])[BASELINE].fillna(0.5).to_dict() for c in ("score", "lower", "upper")}
        return {"elo": elo, "winrate_pct_rounded": wr, "winrate_exact": exact,
                "elo_bootstrap": {m: floats(boot[m].to_numpy()) for m in boot.columns}}

    with quiet:
        battles = sr.get_battles_from_judgment(BENCH, JUDGE, False, 3, BASELINE, False)
    out: dict = {"commit": VERSIONS["legacy"]["commit"],
                 "n_battles": battles.groupby("model_b").size().astype(int).to_dict(),
                 "winner_counts": {m: g.winner.value_counts().astype(int).to_dict()
                                   for m, g in battles.groupby("model_b")}}
    bt = um.compute_mle_elo(battles, baseline_model=BASELINE)
    seed_all()
    with quiet:
        boot = um.get_bootstrap_result(battles, um.compute_mle_elo, ROUNDS, BASELINE)
    out["bt"] = {"what": "compute_mle_elo (sklearn LogisticRegression, no intercept, no penalty, tol 1e-8; "
                         "SCALE 400, BASE 10, INIT 1000, baseline anchored at 1000) on all battles; bootstrap = "
                         "100 x battles.sample(frac=1, replace=True) over all models' battles together; "
                         "lower/upper = np.percentile 2.5/97.5 of the bootstrap Elo; win rate vs baseline = "
                         "1/(1+10^((R_baseline-R_model)/400)), get_win_rate_column rounds x*100 to 2 decimals",
                 "seed": SEED, "rounds": ROUNDS, **table(bt, boot)}

    with quiet:
        sbattles = sr.get_battles_from_judgment(BENCH, JUDGE, False, 3, BASELINE, True)
    out["style_control"] = {}
    for name, kwargs in (("style", {}),
                         ("length", {"apply_ratio": [1], "style_elements": um.LENGTH_CONTROL_ELEMENTS}),
                         ("markdown", {"apply_ratio": [1, 1, 1], "style_elements": um.MARKDOWN_CONTROL_ELEMENTS})):
        X, Y, models = um.construct_style_matrices(sbattles, **kwargs)
        bt_s, style_coef = um.fit_bt(X, Y, models, baseline_model=BASELINE)
        seed_all()
        with quiet:
            boot_s, _ = um.get_bootstrap_result_style_control(X, Y, sbattles, models, um.fit_bt, num_round=ROUNDS,
                                                              baseline_model=BASELINE)
        out["style_control"][name] = {"seed": SEED, "rounds": ROUNDS, "style_coef": floats(style_coef),
                                      **table(bt_s, boot_s)}

    cfg = yaml.safe_load(open(aha / "config" / "judge_config.yaml"))
    pattern = re.compile(cfg["regex_pattern"])
    parsed = {}
    for name, text in VERDICT_TEXTS:
        score, try_again = gj.get_score(text, pattern)
        parsed[name] = {"score": score, "try_again": try_again}
    labels = sorted({p["score"] for p in parsed.values() if p["score"] is not None})
    battles_of = {}
    for label in labels:
        res = {}
        for pos in (0, 1):
            games = [{"score": "A=B"}, {"score": "A=B"}]
            games[pos] = {"score": label}
            rows = sr.get_battles_from_row({"question_id": "u", "model": "m", "games": games}, False, 3, BASELINE)
            # drop the sentinel tie of the other game (one row, winner 'tie')
            mine = rows[:-1] if pos == 0 else rows[1:]
            res[f"game{pos + 1}"] = {"winner": mine[0]["winner"] if mine else None, "weight": len(mine)}
        battles_of[label] = res
    out["verdicts"] = {"regex_pattern": cfg["regex_pattern"],
                       "number_of_judgment_attempts": cfg["number_of_judgment_attempts"],
                       "parsed": parsed, "show_result_battles": battles_of}
    return out


# ---------------------------------------------------------------- driver

def worker(version: str, aha: Path, data_file: Path, result_file: Path) -> None:
    data = json.loads(data_file.read_text())
    with tempfile.TemporaryDirectory(prefix=f"aha-{version}-") as tmp:
        run = run_main if version == "main" else run_legacy
        res = run(aha, data, Path(tmp))
        res["versions"] = versions()
        os.chdir(ROOT)
    result_file.write_text(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--aha", type=Path, help="arena-hard-auto at " + VERSIONS["main"]["commit"])
    ap.add_argument("--aha-legacy", type=Path, help="arena-hard-auto at " + VERSIONS["legacy"]["commit"])
    ap.add_argument("--python", default=sys.executable, help="interpreter for main's code (default: this one)")
    ap.add_argument("--python-legacy", default=sys.executable,
                    help="interpreter for the legacy code (it needs numpy < 2: it uses np.NAN)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--worker", choices=list(VERSIONS), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.aha.resolve(), a.data, a.result)
        return
    if not a.aha or not a.aha_legacy:
        ap.error("--aha and --aha-legacy are required")
    check_checkout(a.aha, "main")
    check_checkout(a.aha_legacy, "legacy")
    data = scripted()
    a.out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="aha-fixture-") as tmp:
        data_file = Path(tmp) / "judgments.json"
        data_file.write_text(json.dumps(data))
        for version, path, python in (("main", a.aha, a.python), ("legacy", a.aha_legacy, a.python_legacy)):
            result_file = Path(tmp) / f"{version}.json"
            env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
            subprocess.run([python, __file__, "--worker", version, "--aha", str(path.resolve()),
                            "--data", str(data_file), "--result", str(result_file)], check=True, env=env)
            results[version] = json.loads(result_file.read_text())
    source = {"repository": REPOSITORY, "versions": VERSIONS}
    write_fixture(a.out / "judgments.json", data)
    verdicts = {
        "about": ("Judge outputs written for this fixture and what Arena-Hard-Auto's gen_judgment.get_score returns "
                  "for each (main: regex list tried in order on text.upper(), last match of the first pattern that "
                  "matches; legacy: one case-sensitive regex, a verdict only when all matches agree, try_again when "
                  "there is none), and what each show_result makes of every parsed label in game 1 (A = baseline) "
                  "and game 2 (A = model): main gives the model-side score rows, legacy the battle's winner and "
                  "weight (0 = dropped)."),
        "source": source,
        "texts": [{"name": n, "text": t, "main": results["main"]["verdicts"]["parsed"][n],
                   "legacy": results["legacy"]["verdicts"]["parsed"][n]} for n, t in VERDICT_TEXTS],
        "main": {k: v for k, v in results["main"]["verdicts"].items() if k != "parsed"},
        "legacy": {k: v for k, v in results["legacy"]["verdicts"].items() if k != "parsed"},
    }
    write_fixture(a.out / "verdicts.json", verdicts)
    for r in results.values():
        r.pop("verdicts")
    stats = {"about": ("Arena-Hard-Auto's win-rate statistics on judgments.json, computed by its own code (see "
                       "analyses/make_arena_hard_fixture.py for what was called). Bootstraps are seeded with numpy's "
                       "global generator = seed right before each one; replicate values depend on the library "
                       "versions recorded per version; full-data estimates do not depend on the seed."),
             "source": source, "seed": SEED, "rounds": ROUNDS, "baseline": BASELINE, **results}
    write_fixture(a.out / "results.json", stats)
    print(f"wrote {a.out}/judgments.json, verdicts.json, results.json")


if __name__ == "__main__":
    main()
