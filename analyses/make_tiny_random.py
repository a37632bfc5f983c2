"""Write the `tiny-random` checkpoint: the tiny architecture with random weights and a full sidecar.

It gives tests (and users before training) a model every command can run. Usage:
    python analyses/make_tiny_random.py [OUT_DIR]   (default: mdlm_probe/checkpoints/tiny-random)
"""

import argparse
from pathlib import Path

from mdlm_probe.core.checkpoints import SHIPPED_DIR, write_sidecar
from mdlm_probe.adapters.tiny_model import TinyConfig, build_tiny_model
from mdlm_probe.adapters.tokenizer import SLACK, build_char_tokenizer


def make(out: Path, n_layer: int = 2, n_embd: int = 64, seed: int = 0) -> Path:
    tok = build_char_tokenizer()
    model = build_tiny_model(len(tok), tok.pad_token_id, tok.eos_token_id,
                             TinyConfig(n_layer=n_layer, n_embd=n_embd, n_head=4, mlp_mult=2), seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    sampler = {"gen_length": 32, "steps": 32, "block_length": 32, "temperature": 0.0, "cfg_scale": 0.0,
               "remasking": "low_confidence", "threshold": None, "cache": "none", "seed": 0, "batch_size": 16,
               "logits_eos_inf": False, "confidence_eos_eot_inf": False}
    write_sidecar(out, {
        "name": out.name, "adapter": "local", "mask_id": tok.mask_token_id, "slack_id": tok.convert_tokens_to_ids(SLACK),
        "eos_id": tok.eos_token_id, "objective": "ce", "collapse": "surface", "ctc_weight": None,
        "init": f"random (seed {seed})", "data": None, "steps": 0, "batch_size": None, "lr": None, "seed": seed,
        "train_seconds": 0.0, "device": "cpu", "code_commit": None, "max_length": 512, "default_fewshot": 0,
        "sampler": sampler, "heldout": None,
    })
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path, default=SHIPPED_DIR / "tiny-random", help="output folder")
    print(make(ap.parse_args().out))
