"""mdlm-probe against the peers' own code on the same checkpoint and machine: tokens/s ratio and token agreement.

Peers (not part of this repository; give their checkout folders):
  LLaDA      ML-GSAI/LLaDA@b7e6c3565f194352da44b38dd12b6970597309f3, generate.py (`generate`; git blob 3f71e51)
  Fast-dLLM  NVlabs/Fast-dLLM@24cc59e75f20a6384bae8c905965bb090b96388e, llada/generate.py (`generate`,
             `generate_with_prefix_cache`, `generate_with_dual_cache`; blob 02e4e7c) and llada/model/ (its LLaDA
             modeling file, blob 95d4aa6, with configuration_llada.py, blob 465158b)

The checkpoint is the LLaDA-architecture stand-in of the tests (tests/helpers/arch_checkpoints.py, the size of
tests/decoding/test_fastdllm_golden.py) or a wider, deeper one where the layers, not the output head,
dominate (`--size layers`), in float32. mdlm-probe loads it with its llada adapter (the checkpoint's modeling
file, which gives the published file's logits: analyses/check_published_arch.py); the peers run under
`--python` (Fast-dLLM pins transformers 4.49.0) and load the same weights with Fast-dLLM's modeling file,
which LLaDA's `generate()` calls like LLaDA's own (it only adds cache arguments). Modes, T = 0, low confidence:

  exact                  vs LLaDA `generate`
  threshold, prefix, dual, prefix+threshold, dual+threshold
                         vs Fast-dLLM's function for the cache, `threshold=` as given (`None` for the modes
                         without one: Fast-dLLM then follows the step plan, as mdlm-probe does)
  threshold+compact      mdlm-probe's threshold decoding with batch compaction (finished rows leave the
                         forward; token-identical) vs Fast-dLLM `generate` with the threshold
  adaptive+threshold     mdlm-probe's adaptive cache (`--cache adaptive`, a write-through cache that skips
                         the block-start refreshes) vs Fast-dLLM's dual cache with the threshold, its fastest
                         mode here; a different approximation, so its tokens need not agree

Batch 1 and 8 (equal-length prompts: Fast-dLLM at this commit builds its canvas for one prompt, so its batch 8
is 8 calls, as its own evaluation runs them; LLaDA's `generate` takes the batch whole). One torch thread per
process. Each round runs every (mode, batch) on both sides, the side that goes first alternating between rounds;
tokens/s counts generated tokens only (gen-length per prompt, from the wall time of the decode calls alone);
the ratio is mdlm-probe / peer of the medians over rounds. "same tokens" counts prompts whose outputs agree.

    python analyses/bench_peers.py --llada /path/LLaDA --fastdllm /path/Fast-dLLM --python /path/venv/bin/python
    python analyses/bench_peers.py ... --size layers --rounds 3 --json reports/bench/peers.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reference_runs import blob_of
from timed_rounds import rotated, write_json

ROOT = Path(__file__).resolve().parents[1]
PINS = {"llada": ("ML-GSAI/LLaDA", "b7e6c3565f194352da44b38dd12b6970597309f3", {"generate.py": "3f71e513d55df4d9e1e231d1cc12b027016fcf5f"}),
        "fastdllm": ("NVlabs/Fast-dLLM", "24cc59e75f20a6384bae8c905965bb090b96388e",
                     {"llada/generate.py": "02e4e7c92c6200cfd4c7b693602f16f7624cf958",
                      "llada/model/modeling_llada.py": "95d4aa6243d3e4c44c044d128ac0cf6761fe4ce7",
                      "llada/model/configuration_llada.py": "465158bc60e9be3e64e364dd02a1027467fd1742"})}
SIZES = {"test": {"seed": 2, "head_scale": 12.0, "d_model": 64, "n_layers": 3, "mlp_hidden_size": 160},
         "layers": {"seed": 2, "head_scale": 12.0, "d_model": 384, "n_heads": 6, "n_kv_heads": 6, "n_layers": 8,
                    "mlp_hidden_size": 1024}}
MODES = {"exact": ("llada", None, None), "threshold": ("generate", None, True),
         "prefix": ("generate_with_prefix_cache", "prefix", None), "dual": ("generate_with_dual_cache", "dual", None),
         "prefix+threshold": ("generate_with_prefix_cache", "prefix", True),
         "dual+threshold": ("generate_with_dual_cache", "dual", True),
         "threshold+compact": ("generate", None, True),  # ours with batch compaction (no cache: its condition)
         "adaptive+threshold": ("generate_with_dual_cache", "adaptive", True)}  # ours only: no peer has it


def check_pins(llada: Path, fastdllm: Path) -> list[str]:
    """Files that are not the pinned blobs (printed as a warning: the numbers are then for that code)."""
    bad = []
    for folder, key in ((llada, "llada"), (fastdllm, "fastdllm")):
        for f, blob in PINS[key][2].items():
            p = folder / f
            if not p.exists():
                sys.exit(f"bench_peers: error: {p} is missing (give the checkout folder of {PINS[key][0]})")
            if blob_of(p) != blob:
                bad.append(f"{p} is not {PINS[key][0]}@{PINS[key][1][:7]}")
    return bad


# ----------------------------------------------------------------------------------------- peer side
def worker(ckpt: str, llada: str, fastdllm: str) -> None:
    """Under the peers' interpreter: load once, then answer one JSON request per stdin line."""
    import torch
    from transformers import AutoModel

    torch.set_num_threads(1)
    ref = Path(fastdllm) / "llada"
    sys.path.insert(0, str(ref))  # Fast-dLLM's generate.py imports model.modeling_llada

    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    fd, ll = load("fastdllm_generate", ref / "generate.py"), load("llada_generate", Path(llada) / "generate.py")
    scratch = Path(tempfile.mkdtemp()) / "ckpt"
    shutil.copytree(ckpt, scratch)
    for f in ("modeling_llada.py", "configuration_llada.py"):
        shutil.copy(ref / "model" / f, scratch / f)
    config = json.loads((scratch / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"}
    (scratch / "config.json").write_text(json.dumps(config))
    model = AutoModel.from_pretrained(scratch, trust_remote_code=True, torch_dtype=torch.float32).eval()
    mask_id = config["mask_token_id"]
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        q = json.loads(line)
        fn_name, st, ids = q["function"], q["settings"], torch.tensor(q["prompts"])
        outs = []
        with torch.no_grad():
            t = time.perf_counter()
            if fn_name == "llada":  # LLaDA's generate takes the batch (equal lengths: no attention mask needed)
                x = ll.generate(model, ids, steps=st["steps"], gen_length=st["gen_length"],
                                block_length=st["block_length"], temperature=0.0, remasking="low_confidence",
                                mask_id=mask_id)
                outs = x[:, ids.shape[1]:].tolist()
            else:  # Fast-dLLM at this commit decodes one prompt per call
                fn = getattr(fd, fn_name)
                for row in ids:
                    x, _ = fn(model, row[None], steps=st["steps"], gen_length=st["gen_length"],
                              block_length=st["block_length"], temperature=0.0, remasking="low_confidence",
                              mask_id=mask_id, threshold=st["threshold"])
                    outs.append(x[0, ids.shape[1]:].tolist())
            dt = time.perf_counter() - t
        print(json.dumps({"seconds": dt, "outputs": outs}), flush=True)


# ----------------------------------------------------------------------------------------- this side
class Peer:
    def __init__(self, python: str, ckpt: Path, llada: Path, fastdllm: Path, tmp: Path):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp / "modules")}
        self.p = subprocess.Popen([python, __file__, "--worker", str(ckpt), str(llada), str(fastdllm)], env=env,
                                  cwd=tmp, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.p.stdout.readline()
        if not first:
            sys.exit("bench_peers: error: the peer process did not start (see its error above)")

    def run(self, function: str, settings: dict, prompts: list[list[int]]) -> dict:
        self.p.stdin.write(json.dumps({"function": function, "settings": settings, "prompts": prompts}) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


def ours(model, mode: str, settings: dict, prompts: list[list[int]]) -> dict:
    import torch
    from mdlm_probe import SamplerConfig, generate

    _, cache, thr = MODES[mode]
    cfg = SamplerConfig(gen_length=settings["gen_length"], steps=settings["steps"], block_length=settings["block_length"],
                        batch_size=len(prompts), temperature=0.0, remasking="low_confidence", cache=cache or "none",
                        threshold=settings["threshold"] if thr else None, compact=mode.endswith("+compact"),
                        confidence_dtype="logits" if mode == "exact" else "float64")  # each peer's softmax dtype
    with torch.no_grad():
        t = time.perf_counter()
        recs = generate(model, prompts, cfg)
        dt = time.perf_counter() - t
    return {"seconds": dt, "outputs": [r["output_ids"] for r in recs]}


def peer_settings(mode: str, settings: dict) -> dict:
    """The peer's settings for `mode`: its threshold only where the mode has one (Fast-dLLM's functions take
    `threshold=None` as the step plan, which is what the modes without a threshold compare with)."""
    return {**settings, "threshold": settings["threshold"] if MODES[mode][2] else None}


def make_prompts(n: int, length: int, seed: int) -> list[list[int]]:
    import random
    rng = random.Random(seed)
    return [[rng.randrange(4, 96) for _ in range(length)] for _ in range(n)]  # the char tokenizer's plain symbols


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llada", type=Path, required=True, help="checkout of ML-GSAI/LLaDA@b7e6c35 (generate.py)")
    ap.add_argument("--fastdllm", type=Path, required=True, help="checkout of NVlabs/Fast-dLLM@24cc59e (llada/)")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the peers (transformers 4.49.0, einops)")
    ap.add_argument("--size", choices=sorted(SIZES), default="test")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--gen-length", type=int, default=32)
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    for w in check_pins(a.llada.resolve(), a.fastdllm.resolve()):
        print(f"warning: {w}", file=sys.stderr)
    sys.path.insert(0, str(ROOT / "tests" / "helpers"))
    from arch_checkpoints import llada_arch_checkpoint
    from mdlm_probe import load_model

    modes = [m for m in a.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        sys.exit(f"bench_peers: error: unknown mode(s) {', '.join(unknown)}; expected {', '.join(MODES)}")
    batches = [int(b) for b in a.batches.split(",")]
    settings = {"gen_length": a.gen_length, "block_length": a.block_length, "steps": a.steps, "threshold": a.threshold}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = llada_arch_checkpoint(tmp / "ckpt", **SIZES[a.size])
        model = load_model(ckpt, dtype="float32")
        n_params = sum(p.numel() for p in model.module.parameters())
        peer = Peer(a.python, ckpt, a.llada.resolve(), a.fastdllm.resolve(), tmp)
        prompts = {b: make_prompts(b, a.prompt_len, seed=b) for b in batches}
        warm = dict(settings, gen_length=a.block_length, steps=a.block_length)
        for m in modes:  # warm-up: each code path once on both sides
            ours(model, m, warm, prompts[1] if 1 in prompts else prompts[batches[0]][:1])
            peer.run(MODES[m][0], peer_settings(m, warm), prompts[batches[0]][:1])
        times = {(m, b, side): [] for m in modes for b in batches for side in ("ours", "peer")}
        agree = {}
        for r in range(a.rounds):
            for m in modes:
                for b in batches:
                    res = {}
                    for side in rotated(("ours", "peer"), r):
                        res[side] = (ours(model, m, settings, prompts[b]) if side == "ours"
                                     else peer.run(MODES[m][0], peer_settings(m, settings), prompts[b]))
                        times[(m, b, side)].append(res[side]["seconds"])
                    agree[(m, b)] = sum(x == y for x, y in zip(res["ours"]["outputs"], res["peer"]["outputs"]))
        peer.close()
    rows = []
    for m in modes:
        for b in batches:
            tok = b * a.gen_length
            o, p = (tok / statistics.median(times[(m, b, s)]) for s in ("ours", "peer"))
            rows.append({"mode": m, "peer": "LLaDA generate" if m == "exact" else f"Fast-dLLM {MODES[m][0]}",
                         "batch": b, "ours_tokens_s": o, "peer_tokens_s": p, "ratio": o / p,
                         "same_tokens": agree[(m, b)], "prompts": b})
    print(f"# LLaDA-architecture checkpoint '{a.size}' ({n_params / 1e6:.2f}M parameters, float32), prompt "
          f"{a.prompt_len} tokens, gen-length {a.gen_length}, block {a.block_length}, steps {a.steps}, threshold "
          f"{a.threshold}, T = 0; CPU, 1 torch thread per process; medians of {a.rounds} alternating rounds")
    print("| mode | peer | batch | mdlm-probe tokens/s | peer tokens/s | ratio | same tokens |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['peer']} | {r['batch']} | {r['ours_tokens_s']:.1f} | {r['peer_tokens_s']:.1f} | "
              f"{r['ratio']:.2f}x | {r['same_tokens']}/{r['prompts']} |")
    fastest = []
    for b in batches:  # the fastest mode of each side (Fast-dLLM's modes only on the peer's side)
        o = max((r for r in rows if r["batch"] == b), key=lambda r: r["ours_tokens_s"])
        p = max((r for r in rows if r["batch"] == b and r["mode"] != "exact"), key=lambda r: r["peer_tokens_s"],
                default=None)
        if p is not None:
            fastest.append({"batch": b, "ours": o["mode"], "peer": p["mode"],
                            "ratio": o["ours_tokens_s"] / p["peer_tokens_s"]})
            print(f"batch {b}: fastest mdlm-probe mode {o['mode']} ({o['ours_tokens_s']:.1f} tokens/s) / fastest "
                  f"Fast-dLLM mode {p['mode']} ({p['peer_tokens_s']:.1f}) = {fastest[-1]['ratio']:.2f}x")
    write_json(a.json, {"size": a.size, "parameters": n_params, "settings": settings, "rounds": a.rounds,
                        "rows": rows, "fastest": fastest})
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:5])
    else:
        sys.exit(main())
