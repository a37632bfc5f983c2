"""The one seeded weight filler behind the test-built checkpoints (arch_checkpoints.py, dream_golden_checkpoint.py).

Every parameter is drawn from one `torch.Generator` in name order, so a checkpoint does not depend on how a
transformers version initialises modules. Only torch is imported: analyses/make_dream_golden.py builds the
Dream golden's checkpoint beside a reference transformers without the package.
"""

from __future__ import annotations

import torch


def fill_weights(model: torch.nn.Module, seed: int, head: str, head_scale: float,
                 embeddings: tuple[str, ...]) -> None:
    """Every parameter from one generator seeded `seed`, in name order: matrices N(0, 1/fan_in), embeddings
    (names ending in one of `embeddings`) N(0, 1), norm scales 1 + N(0, 0.01), biases N(0, 0.01); the output
    matrix named `head` times `head_scale`."""
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    if head not in params:
        raise KeyError(f"no parameter {head!r} to scale as the output matrix")
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if p.dim() == 2:
                scale = 1.0 if name.endswith(embeddings) else p.shape[1] ** -0.5
                p.copy_(r * scale * (head_scale if name == head else 1.0))
            elif name.endswith("weight"):
                p.copy_(1.0 + 0.1 * r)
            else:
                p.copy_(0.1 * r)
