"""The diffusion sampler: LLaDA's `generate()` reproduced token for token, plus step hooks and fast modes.

Decoding fills a canvas of `gen_length` masks after the prompt, block by block, left to right. Each step
runs one forward pass, proposes a token for every masked position, scores each proposal with a
remasking rule, and commits the best few; committed tokens never change. Hooks run after each step and
may edit the canvas (the shift interventions); the block's schedule then recomputes from the masks left.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import BadInput

NEG_INF = float("-inf")
CACHES = ("none", "prefix", "dual")


# ----------------------------------------------------------------------------------------- settings
@dataclass
class SamplerConfig:
    gen_length: int = 48
    steps: int = 48
    block_length: int = 48
    temperature: float = 0.0
    cfg_scale: float = 0.0
    remasking: str = "low_confidence"
    threshold: float | None = None  # Fast-dLLM parallel decoding: commit every proposal at or above this
    cache: str = "none"  # none | prefix (keys/values before the block) | dual (before and after the block)
    cache_refresh: int = 0  # with a cache: full forward every N steps within a block (0 = at block starts only)
    seed: int = 0
    batch_size: int = 16
    collapse: str | None = None  # which collapse map is scored; None = the checkpoint's
    logits_eos_inf: bool = False
    confidence_eos_eot_inf: bool = False

    def validate(self) -> "SamplerConfig":
        if self.gen_length <= 0 or self.steps <= 0 or self.block_length <= 0 or self.batch_size <= 0:
            raise BadInput("gen-length, steps, block-length and batch-size must be positive")
        if self.gen_length % self.block_length:
            raise BadInput(f"gen-length {self.gen_length} is not a multiple of block-length {self.block_length}")
        nb = self.gen_length // self.block_length
        if self.steps % nb:
            raise BadInput(f"steps {self.steps} is not a multiple of the number of blocks {nb} "
                           f"(gen-length {self.gen_length} / block-length {self.block_length})")
        if self.steps // nb > self.block_length:
            raise BadInput(f"{self.steps // nb} steps per block exceed the block length {self.block_length}")
        if self.remasking not in REMASKING:
            raise BadInput(f"unknown remasking {self.remasking!r}; expected one of {', '.join(REMASKING)}")
        if self.temperature < 0 or self.cfg_scale < 0:
            raise BadInput("temperature and cfg-scale must be >= 0")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise BadInput(f"threshold {self.threshold} is not in (0, 1]")
        if self.cache not in CACHES:
            raise BadInput(f"unknown cache {self.cache!r}; expected one of {', '.join(CACHES)}")
        if self.cache_refresh < 0:
            raise BadInput(f"cache-refresh {self.cache_refresh} is negative (0 = refresh at block starts only)")
        if self.collapse not in (None, "surface", "ctc"):
            raise BadInput(f"unknown collapse {self.collapse!r}; expected surface or ctc")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SamplerConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ----------------------------------------------------------------------------------------- remasking rules
# Each rule maps (logits (B, L, V), proposals x0 (B, L)) to a confidence (B, L); higher commits first.
def _low_confidence(logits, x0):
    p = F.softmax(logits, dim=-1)  # in the logits' dtype, as LLaDA does
    return torch.gather(p, -1, x0[..., None]).squeeze(-1)


def _random(logits, x0):
    return torch.rand((x0.shape[0], x0.shape[1]), device=x0.device)


def _topk_margin(logits, x0):
    top2 = F.softmax(logits.float(), dim=-1).topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


def _entropy(logits, x0):
    logp = F.log_softmax(logits.float(), dim=-1)
    return (logp.exp() * logp).sum(-1)  # negative entropy: confident = high


def _maskgit_plus(logits, x0):
    return F.softmax(logits.float(), dim=-1).max(-1).values


REMASKING: dict[str, Callable] = {
    "low_confidence": _low_confidence,
    "random": _random,
    "maskgit_plus": _maskgit_plus,  # Dream's names
    "topk_margin": _topk_margin,
    "entropy": _entropy,
}


# ----------------------------------------------------------------------------------------- hooks
@dataclass
class StepState:
    """What a step hook sees. Hooks may edit `x` (B, L) in place, and should move trajectory entries too."""

    x: torch.Tensor  # (B, P + G) the canvas
    logits: torch.Tensor  # (B, P + G, V) of this step
    step: int  # global step index, 0-based, just finished
    block: int
    prompt_len: int
    gen_length: int
    block_length: int
    mask_id: int
    commit_step: torch.Tensor  # (B, G) long, -1 = not committed by the model
    confidence: torch.Tensor  # (B, G) float
    block_of: torch.Tensor  # (B, G) long
    sample_ids: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # hooks record what they did here, per row

    @property
    def response(self) -> torch.Tensor:
        return self.x[:, self.prompt_len:]

    def committed_fraction(self) -> torch.Tensor:
        """(B,) share of response positions holding a token."""
        return (self.response != self.mask_id).float().mean(1)


StepHook = Callable[[StepState], None]


# ----------------------------------------------------------------------------------------- the loop
def num_transfer_tokens(masks: torch.Tensor, steps: int) -> torch.Tensor:
    """(B,) masks left, steps left -> (B, steps) tokens to commit per step: base, first (m % s) get one more."""
    base = masks // steps
    rem = masks % steps
    out = base[:, None].repeat(1, steps)
    idx = torch.arange(steps, device=masks.device)[None, :]
    return out + (idx < rem[:, None]).long()


def add_gumbel_noise(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Gumbel-max in float64 as LLaDA does: exp(logits) / (-log U)^T."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits, dtype=torch.float64)
    return logits.exp() / (-torch.log(noise)) ** temperature


@dataclass
class Fork:
    """The decoding state right after one step's commits, before its hooks. Decoding can resume from it:
    a shift sweep decodes the part a clean run and its shifted twins share once (see `diffuse`)."""

    x: torch.Tensor  # (B, P + G)
    commit_step: torch.Tensor  # (B, G)
    confidence: torch.Tensor  # (B, G)
    block_of: torch.Tensor  # (B, G)
    logits: torch.Tensor  # (B, P + G, V) of that step, for the hooks
    step: int
    block: int
    i: int  # the step's index within its block
    schedule: torch.Tensor  # (B, steps) the block's plan
    nfe: int
    tokens_forwarded: int
    rng: torch.Tensor  # generator states (T > 0 and random remasking draw from them)
    cuda_rng: torch.Tensor | None = None


@dataclass
class Decoded:
    x: torch.Tensor  # (B, P + G) final canvas
    commit_step: torch.Tensor  # (B, G)
    confidence: torch.Tensor  # (B, G)
    block_of: torch.Tensor  # (B, G)
    nfe: int
    tokens_forwarded: int
    info: dict[str, Any]
    forks: dict[str, Fork | None] = field(default_factory=dict)


@torch.no_grad()
def diffuse(model, prompt: torch.Tensor, attention_mask: torch.Tensor | None, cfg: SamplerConfig,
            hooks: Sequence[StepHook] = (), sample_ids: Sequence[str] = (),
            forks: dict[str, Callable[[StepState], torch.Tensor]] | None = None, resume: Fork | None = None,
            stop_after_forks: bool = False) -> Decoded:
    """Decode one left-padded batch. prompt (B, P) long; attention_mask (B, P) or None.

    `forks` name -> predicate (B,) bool on a StepState: at the first step where any row is due, the state
    is kept as `Decoded.forks[name]` if every row is due then, else None (rows would part ways).
    `stop_after_forks` returns once every fork is taken. `resume` continues a fork of the same prompts and
    settings (no KV cache): the fork step's hooks run, then decoding goes on as if never interrupted.
    """
    cfg.validate()
    if resume is not None and cfg.cache != "none":
        raise ValueError("resuming a fork needs cache='none' (the KV cache is not part of a fork)")
    mask_id, dev = model.mask_id, model.device
    B, P = prompt.shape
    G, bl = cfg.gen_length, cfg.block_length
    x = torch.full((B, P + G), mask_id, dtype=torch.long, device=dev)
    x[:, :P] = prompt.to(dev)
    if attention_mask is not None:
        attention_mask = torch.cat([attention_mask.to(dev), attention_mask.new_ones((B, G)).to(dev)], dim=-1)
    prompt_index = x != mask_id  # (B, L), padding included, as in the reference
    num_blocks = G // bl
    steps_per_block = cfg.steps // num_blocks
    rule = REMASKING[cfg.remasking]
    eos, eot = model.eos_id, getattr(model, "eot_id", None)

    commit_step = torch.full((B, G), -1, dtype=torch.long, device=dev)
    confidence_at = torch.zeros((B, G), dtype=torch.float32, device=dev)
    block_of = torch.full((B, G), -1, dtype=torch.long, device=dev)
    info: dict[str, Any] = {}
    nfe = tokens_forwarded = 0
    step = 0

    use_cache, dual = cfg.cache != "none", cfg.cache == "dual"
    if use_cache and not getattr(model, "supports_cache", False):
        raise BadInput(f"--cache {cfg.cache} needs an adapter with KV cache support; "
                       f"{getattr(model, 'adapter_name', type(model).__name__)!r} has none (use --cache none)")
    kv: dict[str, Any] | None = None  # the block cache: what it holds, where, built from which tokens, its age

    def forward(x_in, start, end):
        """One forward pass -> logits (B, L, V) for the block [start, end). With a cache (Fast-dLLM), a full
        forward at the block's first step stores the keys/values before the block (prefix) and, for `dual`,
        after it; later steps run the model on the block and what follows it (prefix) or the block alone
        (dual). Rows outside what was run keep the full forward's logits: they are committed or in later
        blocks, so never chosen."""
        nonlocal nfe, tokens_forwarded, kv
        xx, am = x_in, attention_mask
        if cfg.cfg_scale > 0:
            un_x = x_in.clone()
            un_x[prompt_index] = mask_id
            xx = torch.cat([x_in, un_x], 0)  # (2B, L): conditional and unconditional copies
            am = None if attention_mask is None else torch.cat([attention_mask, attention_mask], 0)
        if not use_cache:
            both = model(xx, attention_mask=am)
            tokens_forwarded += xx.numel()
        else:
            suffix = end if dual else None
            cached = torch.cat([xx[:, :start], xx[:, end:]], 1) if dual else xx[:, :start]
            stale = (kv is None or kv["start"] != start or not torch.equal(kv["tokens"], cached)
                     or (cfg.cache_refresh > 0 and kv["age"] >= cfg.cache_refresh))
            if stale:  # a new block, a refresh due, or a hook edited cached positions: full forward
                both, cache = model.forward_prefix(xx, am, start, suffix)
                kv = {"cache": cache, "start": start, "tokens": cached.clone(), "logits": both, "age": 1}
                tokens_forwarded += xx.numel()
            else:
                part = model.forward_cached(xx, am, kv["cache"], start, suffix)  # (B', (end or L) - start, V)
                both = kv["logits"].clone()
                both[:, start:start + part.shape[1]] = part
                kv["age"] += 1
                tokens_forwarded += part.shape[0] * part.shape[1]
        nfe += 1
        if cfg.cfg_scale > 0:
            cond, un = torch.chunk(both, 2, dim=0)
            return un + (cfg.cfg_scale + 1) * (cond - un)
        return both

    def state_at(b: int, logits: torch.Tensor) -> StepState:
        return StepState(x=x, logits=logits, step=step, block=b, prompt_len=P, gen_length=G, block_length=bl,
                         mask_id=mask_id, commit_step=commit_step, confidence=confidence_at, block_of=block_of,
                         sample_ids=list(sample_ids), info=info)

    def run_hooks(b: int, end: int, i: int, schedule: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        before = (x[:, P:end] == mask_id).sum(1)
        state = state_at(b, logits)
        for hook in hooks:
            hook(state)
        after = (x[:, P:end] == mask_id).sum(1)
        if not torch.equal(before, after):
            # Recompute the rest of this block's plan from the masks now left (at least one step more).
            left = max(1, schedule.shape[1] - i - 1)
            schedule = torch.cat([schedule[:, : i + 1], num_transfer_tokens(after, left)], 1)
        return schedule

    pending, taken = dict(forks or {}), {}
    for b in range(resume.block if resume is not None else 0, num_blocks):
        end = P + (b + 1) * bl  # positions >= end belong to later blocks
        if resume is not None:  # continue a fork: its step's commits are in, its hooks are not
            for dst, src in ((x, resume.x), (commit_step, resume.commit_step), (confidence_at, resume.confidence),
                             (block_of, resume.block_of)):
                dst.copy_(src)
            step, i, nfe, tokens_forwarded = resume.step, resume.i, resume.nfe, resume.tokens_forwarded
            schedule = resume.schedule.clone()
            torch.set_rng_state(resume.rng)
            if resume.cuda_rng is not None:
                torch.cuda.set_rng_state(resume.cuda_rng, dev)
            if hooks:
                schedule = run_hooks(b, end, i, schedule, resume.logits)
            i, step, resume = i + 1, step + 1, None
        else:
            # The plan counts this block's masks only (as the reference does); masks left earlier (a [MASK]
            # the model proposed) still compete, since only positions after the block are excluded.
            schedule = num_transfer_tokens((x[:, end - bl:end] == mask_id).sum(1), steps_per_block)
            i = 0
        while True:
            open_ = (x[:, P:end] == mask_id).sum(1)  # (B,)
            if int(open_.max()) == 0:
                break
            if cfg.threshold is None and i >= schedule.shape[1]:
                # The plan is done. As in the reference, a [MASK] the model itself proposed stays (a trained
                # model never proposes it); masks a hook reopened are covered by the recomputed plan.
                break
            mask_index = x == mask_id  # (B, L)
            logits = forward(x, end - bl, end)  # (B, L, V)
            if cfg.threshold is not None:
                logits[:, :, mask_id] = NEG_INF  # no step plan to end on: never propose [MASK], so blocks finish
            if cfg.logits_eos_inf and eos is not None:
                logits[:, :, eos] = NEG_INF
            noisy = add_gumbel_noise(logits, cfg.temperature)
            x0 = torch.argmax(noisy, dim=-1)  # (B, L)
            if cfg.confidence_eos_eot_inf:
                # The reference writes `noisy[..., eos] = logits[..., eot] = -inf`: at T = 0 both names are
                # one tensor so both ids reach the softmax; at T > 0 only EoT does.
                if eot is not None:
                    logits[:, :, eot] = NEG_INF
                if eos is not None:
                    noisy[:, :, eos] = NEG_INF
            conf = rule(logits, x0)  # (B, L)
            conf[:, end:] = NEG_INF
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, conf, torch.tensor(NEG_INF, dtype=conf.dtype, device=dev))
            if cfg.threshold is not None:
                # Commit every proposal at or above the threshold, and at least the best one.
                k_row = ((conf >= cfg.threshold).sum(1)).clamp(min=1).minimum(open_)
            else:
                k_row = schedule[:, i].minimum(open_)
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(B):
                k = int(k_row[j])
                if k > 0:
                    _, sel = torch.topk(conf[j], k=k)
                    transfer[j, sel] = True
            x[transfer] = x0[transfer]
            g = transfer[:, P:]
            commit_step[g] = step
            confidence_at[g] = conf[:, P:][g].float()
            block_of[g] = b
            for name in list(pending):
                due = pending[name](state_at(b, logits))
                if bool(due.any()):
                    del pending[name]
                    taken[name] = Fork(
                        x=x.clone(), commit_step=commit_step.clone(), confidence=confidence_at.clone(),
                        block_of=block_of.clone(), logits=logits.clone(), step=step, block=b, i=i,
                        schedule=schedule.clone(), nfe=nfe, tokens_forwarded=tokens_forwarded,
                        rng=torch.get_rng_state(),
                        cuda_rng=torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                    ) if bool(due.all()) else None
            if forks and stop_after_forks and not pending:
                return Decoded(x=x, commit_step=commit_step, confidence=confidence_at, block_of=block_of, nfe=nfe,
                               tokens_forwarded=tokens_forwarded, info=info, forks=taken)
            if hooks:
                schedule = run_hooks(b, end, i, schedule, logits)
            i += 1
            step += 1
    return Decoded(x=x, commit_step=commit_step, confidence=confidence_at, block_of=block_of, nfe=nfe,
                   tokens_forwarded=tokens_forwarded, info=info, forks=taken)


# ----------------------------------------------------------------------------------------- text in, records out
def encode_prompts(model, prompts: Sequence[str], chat: bool = False) -> list[list[int]]:
    """Prompt texts -> token ids (with the chat template when asked and available)."""
    tok = model.tokenizer
    out = []
    for p in prompts:
        if chat and getattr(tok, "chat_template", None):
            text = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
            out.append(tok(text, add_special_tokens=False)["input_ids"])
        else:
            out.append(tok(p, add_special_tokens=False)["input_ids"])
    return out


def pad_left(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token id lists -> ids (B, P), attention mask (B, P)."""
    P = max(len(s) for s in batch)
    ids = torch.full((len(batch), P), pad_id, dtype=torch.long)
    am = torch.zeros((len(batch), P), dtype=torch.long)
    for i, s in enumerate(batch):
        if s:
            ids[i, P - len(s):] = torch.tensor(list(s), dtype=torch.long)
            am[i, P - len(s):] = 1
    return ids, am


def generate(model, prompts: Sequence[str] | Sequence[Sequence[int]], cfg: SamplerConfig | None = None,
             hooks: Sequence[StepHook] = (), chat: bool = False, sample_ids: Sequence[str] | None = None,
             forks: dict[str, Callable[[StepState], torch.Tensor]] | None = None,
             forks_out: dict[str, Fork | None] | None = None, resume: Fork | None = None,
             stop_after_forks: bool = False) -> list[dict[str, Any]]:
    """Generate for prompts (texts or token id lists), in batches of `cfg.batch_size`.

    Returns one partial sample record per prompt (CONVENTIONS.md): prompt, prompt_ids, output_ids,
    raw_text, text_surface, text_ctc, text, trajectory, nfe, seconds, sampler. Each batch is seeded
    with `cfg.seed`, so a prompt's output at T > 0 depends on the batch it was decoded in.
    `forks` (taken into `forks_out`) and `resume` are `diffuse`'s, for prompts that fit one batch; with
    `stop_after_forks` decoding stops once the forks are taken and no records are returned.
    """
    from .records import decode_output

    cfg = (cfg or SamplerConfig()).validate()
    if prompts and isinstance(prompts[0], str):
        ids_list = encode_prompts(model, prompts, chat=chat)
        texts = list(prompts)
    else:
        ids_list = [list(map(int, p)) for p in prompts]
        texts = [model.tokenizer.decode(p) for p in ids_list]
    sample_ids = list(sample_ids) if sample_ids is not None else [str(i) for i in range(len(ids_list))]
    pad = model.pad_id if model.pad_id is not None else (model.eos_id if model.eos_id is not None else 0)
    if (forks or resume is not None) and len(ids_list) > cfg.batch_size:
        raise ValueError("forks and resume work on one batch at a time")
    records = []
    for s in range(0, len(ids_list), cfg.batch_size):
        chunk = ids_list[s: s + cfg.batch_size]
        if max(len(c) for c in chunk) + cfg.gen_length > model.max_length:
            raise BadInput(f"prompt ({max(len(c) for c in chunk)} tokens) + gen-length {cfg.gen_length} exceed "
                           f"the model's max length {model.max_length}")
        ids, am = pad_left(chunk, pad)
        # The attention mask is passed only when padding exists: the reference gets none for equal lengths.
        am_arg = am if bool((am == 0).any()) else None
        torch.manual_seed(cfg.seed)
        t0 = time.perf_counter()
        out = diffuse(model, ids, am_arg, cfg, hooks=hooks, sample_ids=sample_ids[s: s + cfg.batch_size],
                      forks=forks, resume=resume, stop_after_forks=stop_after_forks)
        if forks_out is not None:
            forks_out.update(out.forks)
        if stop_after_forks:
            return []
        secs = (time.perf_counter() - t0) / len(chunk)
        P = ids.shape[1]
        for j, p_ids in enumerate(chunk):
            rec = {
                "prompt": texts[s + j],
                "prompt_ids": p_ids,
                **decode_output(model, out.x[j, P:].tolist(), cfg.collapse),
                "trajectory": {
                    "commit_step": out.commit_step[j].tolist(),
                    "confidence": [round(float(c), 5) for c in out.confidence[j]],
                    "block": out.block_of[j].tolist(),
                },
                "nfe": out.nfe,
                "tokens_forwarded": out.tokens_forwarded // len(chunk),
                "seconds": round(secs, 4),
                "sampler": cfg.to_dict(),
            }
            for key, per_row in out.info.items():  # what hooks recorded, per row
                if isinstance(per_row, dict) and sample_ids[s + j] in per_row:
                    rec.setdefault("hook_info", {})[key] = per_row[sample_ids[s + j]]
            records.append(rec)
    return records


def resolve_sampler(overrides: dict[str, Any] | None, model=None) -> SamplerConfig:
    """CONVENTIONS: an option not given comes from the checkpoint sidecar's `sampler`, then the defaults."""
    base = SamplerConfig().to_dict()
    side = (getattr(model, "sidecar", None) or {}).get("sampler") or {}
    base.update({k: v for k, v in side.items() if k in base})
    base.update({k: v for k, v in (overrides or {}).items() if v is not None and k in base})
    return SamplerConfig.from_dict(base).validate()
