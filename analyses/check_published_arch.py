"""Check, with LLaDA's and Dream's PUBLISHED modeling files, what tests/decoding/test_remote_cache.py checks with the
project's test modeling files: the architecture checkpoints (tests/helpers/arch_checkpoints.py) load with the same
logits, and the llada/dream adapters' block KV caches equal the full forward.

The published files are not shipped; point the script at copies (the ones used, by git blob):
  LLaDA, first release:  QuentinFitteRey/LLada-Reasoning@290709e llada_local_instruct/modeling_llada.py (ddf5467)
  LLaDA, October 2025:   ML-GSAI/LLaDA@59750478 modeling_llada.py (5cf909c)
  LLaDA configuration:   configuration_llada.py (3556bda, beside the first)
  Dream:                 siyue-zhang/DiffEmbed@3a49bbc dream/modeling_dream.py (9e5a733) with its last lines
                         returning `MaskedLMOutput(logits=self.lm_head(outputs[0]))` as Dream's release does
                         (that copy returns the hidden states), with dream/configuration_dream.py (2e75661)
                         and dream/generation_utils.py (c972cb3), which it imports, in the same folder

    python analyses/check_published_arch.py --llada modeling_llada.py [--llada modeling_llada_oct.py] \\
        --llada-config configuration_llada.py --dream modeling_dream.py --dream-config configuration_dream.py

For each checkpoint (a few sizes: grouped keys, tied embeddings, deeper) it prints, in float64 and float32:
the largest logit difference between the published file and the test file (unpadded and left-padded), and
the largest difference between the adapter's cached forward (prefix and dual) and the full forward of the
published file. Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))
from arch_checkpoints import dream_arch_checkpoint, llada_arch_checkpoint  # noqa: E402  (tests/ helper)

from mdlm_probe import load_model  # noqa: E402

LLADA_SIZES = [{}, {"weight_tying": True}, {"n_kv_heads": 2},
               {"n_layers": 3, "d_model": 64, "n_heads": 8, "n_kv_heads": 8}]
LLADA_AUTO = {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM",
              "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM"}
DREAM_AUTO = {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"}
DREAM_SIZES = [{}, {"num_key_value_heads": 4},
               {"num_hidden_layers": 3, "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 2}]


def with_published(ours: Path, dst: Path, files: dict[str, Path], auto_map: dict) -> Path:
    """A copy of the checkpoint `ours` that loads with the published files instead of the test file."""
    shutil.copytree(ours, dst)
    for name, src in files.items():
        shutil.copy(src, dst / name)
    cfg = json.loads((dst / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**cfg, "auto_map": auto_map}))
    return dst


def compare(ours: Path, pub: Path, dtype: str) -> dict:
    a, b = load_model(ours, dtype=dtype), load_model(pub, dtype=dtype)
    torch.manual_seed(0)
    B, P, G = 3, 6, 12
    x = torch.randint(3, 90, (B, P + G))
    x[:, P + 4:] = b.mask_id
    am = torch.ones(B, P + G, dtype=torch.long)
    am[1, :2], am[2, :4] = 0, 0
    out = {}
    with torch.no_grad():
        out["unpadded"] = (a(x) - b(x)).abs().max().item()
        honours_mask = b.extra["batch_invariant"]  # LLaDA's first file ignores the mask (the padding check says so)
        out["padded"] = (a(x, attention_mask=am) - b(x, attention_mask=am)).abs().max().item() if honours_mask else None
        full, worst = b(x, attention_mask=am), 0.0
        for start in (P, P + 4, 1):
            for suffix in (None, start + 4):
                logits, cache = b.forward_prefix(x, am, start, suffix)
                assert torch.equal(logits, full)
                part = b.forward_cached(x, am, cache, start, suffix)
                worst = max(worst, (part - full[:, start:suffix or None]).abs().max().item())
        out["cached_vs_full"] = worst
    out["state_dict_names_equal"] = sorted(a.module.state_dict()) == sorted(b.module.state_dict())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llada", type=Path, action="append", default=[], help="a published modeling_llada.py")
    ap.add_argument("--llada-config", type=Path, help="the published configuration_llada.py")
    ap.add_argument("--dream", type=Path, help="a published modeling_dream.py (returning logits), with its "
                    "generation_utils.py beside it")
    ap.add_argument("--dream-config", type=Path, help="the published configuration_dream.py")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="check_published_arch_"))
    cases = []
    for i, kw in enumerate(LLADA_SIZES if args.llada else []):
        ours = llada_arch_checkpoint(root / f"llada{i}", **kw)
        for j, modeling in enumerate(args.llada):
            files = {"modeling_llada.py": modeling, "configuration_llada.py": args.llada_config}
            pub = with_published(ours, root / f"llada{i}-pub{j}", files, LLADA_AUTO)
            cases.append((f"llada {kw or 'default'} vs {modeling.name}", ours, pub))
    for i, kw in enumerate(DREAM_SIZES if args.dream else []):
        ours = dream_arch_checkpoint(root / f"dream{i}", **kw)
        files = {"modeling_dream.py": args.dream, "configuration_dream.py": args.dream_config,
                 "generation_utils.py": args.dream.parent / "generation_utils.py"}
        pub = with_published(ours, root / f"dream{i}-pub", files, DREAM_AUTO)
        cases.append((f"dream {kw or 'default'} vs {args.dream.name}", ours, pub))
    for name, ours, pub in cases:
        for dtype in ("float64", "float32"):
            r = compare(ours, pub, dtype)
            padded = "n/a (mask ignored)" if r["padded"] is None else f"{r['padded']:.3g}"
            print(f"{name} [{dtype}]: logits published vs test file: unpadded {r['unpadded']:.3g}, padded {padded}; "
                  f"cached vs full (published): {r['cached_vs_full']:.3g}; same state-dict names: "
                  f"{r['state_dict_names_equal']}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
