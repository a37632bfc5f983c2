"""The diffusion sampler: LLaDA's `generate()` reproduced token for token, plus step hooks and fast modes.

Decoding fills a canvas of `gen_length` masks after the prompt, block by block, left to right. Each step
runs one forward pass, proposes a token for every masked position, scores each proposal with a
remasking rule, and commits the best few; committed tokens never change. Hooks run after each step and
may edit the canvas (the shift interventions); the block's plan then recomputes from the masks left.

`diffuse` is the loop, meant to read beside LLaDA's `generate()`; each concern it calls is one module:
the decode's state and the hook contract (`decode_state.py`), the per-step commit counts
(`schedules.py`), the logit edits (`processors.py`), the forward pass with its KV cache (`kv_cache.py`)
and the records (`records.decoded_records`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F

from .decode_state import StepHook, StepState
from .errors import BadInput
from .kv_cache import CachedForward
from .processors import CONFIDENCE_DTYPES, NEG_INF, apply, build_processors
from .records import decoded_records
from .schedules import SCHEDULES, Schedule, get_schedule, num_transfer_tokens

__all__ = ["SamplerConfig", "StepState", "StepHook", "Decoded", "diffuse", "generate", "resolve_sampler",
           "encode_prompts", "pad_left", "add_gumbel_noise", "num_transfer_tokens", "REMASKING", "CACHES"]

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
    schedule: str = "llada"  # the per-step commit counts (schedules.py)
    threshold: float | None = None  # Fast-dLLM parallel decoding: commit every proposal at or above this
    confidence_dtype: str = "logits"  # the confidence's softmax: in the logits' dtype (LLaDA) or float64 (Fast-dLLM)
    cache: str = "none"  # none | prefix (keys/values before the block) | dual (before and after the block)
    cache_refresh: int = 0  # with a cache: full forward every N steps within a block (0 = at block starts only)
    seed: int = 0
    batch_size: int = 16
    collapse: str | None = None  # which collapse map is scored; None = the checkpoint's
    logits_eos_inf: bool = False
    confidence_eos_eot_inf: bool = False
    top_k: int | None = None  # Dream's filters (processors.py): keep the k most likely tokens (0/None: off) ...
    top_p: float | None = None  # ... and the smallest set reaching probability p, before proposing
    alg_temp: float | None = None  # Dream: > 0 draws which positions commit, softmax(confidence / alg_temp)
    eps: float = 1e-3  # the dream schedule's last time (its clock runs from 1 down to eps)

    # Settings added after runs were first recorded, at the value every earlier run used: `to_dict` leaves
    # them out at that value, so earlier run directories stay resumable and comparable (absent = this).
    ADDED_LATER: ClassVar[dict[str, Any]] = {"schedule": "llada", "top_k": None, "top_p": None, "alg_temp": None,
                                             "eps": 1e-3, "confidence_dtype": "logits"}

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
        if self.schedule not in SCHEDULES:
            raise BadInput(f"unknown schedule {self.schedule!r}; expected one of {', '.join(SCHEDULES)}")
        if self.temperature < 0 or self.cfg_scale < 0:
            raise BadInput("temperature and cfg-scale must be >= 0")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise BadInput(f"threshold {self.threshold} is not in (0, 1]")
        if self.confidence_dtype not in CONFIDENCE_DTYPES:
            raise BadInput(f"unknown confidence dtype {self.confidence_dtype!r}; expected one of "
                           f"{', '.join(CONFIDENCE_DTYPES)}")
        if self.cache not in CACHES:
            raise BadInput(f"unknown cache {self.cache!r}; expected one of {', '.join(CACHES)}")
        if self.cache_refresh < 0:
            raise BadInput(f"cache-refresh {self.cache_refresh} is negative (0 = refresh at block starts only)")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 0):
            raise BadInput(f"top-k {self.top_k} is not a whole number >= 0 (0 = no filter)")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise BadInput(f"top-p {self.top_p} is not in (0, 1]")
        if self.alg_temp is not None and self.alg_temp < 0:
            raise BadInput(f"alg-temp {self.alg_temp} is negative")
        if not 0.0 < self.eps < 1.0:
            raise BadInput(f"eps {self.eps} is not in (0, 1)")
        if self.remasking == "origin" and self.schedule != "dream":
            raise BadInput("remasking origin needs --schedule dream (it commits with Dream's probability 1 - s/t)")
        if self.collapse not in (None, "surface", "ctc"):
            raise BadInput(f"unknown collapse {self.collapse!r}; expected surface or ctc")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in self.ADDED_LATER.items():
            if d[k] == v:
                del d[k]
        return d

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


# Dream's rules, as its `sample_tokens` computes them (softmax in the logits' dtype; at T > 0 from the logits
# Dream has divided by T, see processors.Temperature).
def _maskgit_plus(logits, x0):
    return _low_confidence(logits, x0)  # the proposal's probability: the top one at T = 0


def _topk_margin(logits, x0):
    top2 = F.softmax(logits, dim=-1).topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


def _entropy(logits, x0):
    p = F.softmax(logits, dim=-1)
    return (p * torch.log(p + 1e-10)).sum(-1)  # negative entropy: confident = high; Dream's 1e-10


REMASKING: dict[str, Callable] = {
    "low_confidence": _low_confidence,
    "random": _random,
    "maskgit_plus": _maskgit_plus,  # Dream's names
    "topk_margin": _topk_margin,
    "entropy": _entropy,
    # Dream's `origin`: each mask commits with probability 1 - s/t (the loop draws that); the score kept
    # in the trajectory is the proposal's probability.
    "origin": _maskgit_plus,
}


def add_gumbel_noise(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Gumbel-max in float64 as LLaDA does: exp(logits) / (-log U)^T."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits, dtype=torch.float64)
    return logits.exp() / (-torch.log(noise)) ** temperature


def propose(logits: torch.Tensor, due: torch.Tensor, temperature: float, how: str = "gumbel") -> torch.Tensor:
    """Proposals (B, L) from logits (B, L, V). T = 0: the argmax. T > 0, "gumbel": LLaDA's Gumbel-max over
    every position; "categorical": Dream's draw, one sample per `due` position (B, L) bool, in row-major
    order, from the softmax of the logits (already divided by T); other positions keep the argmax."""
    if temperature == 0:
        return torch.argmax(logits, dim=-1)
    if how == "gumbel":
        return torch.argmax(add_gumbel_noise(logits, temperature), dim=-1)
    x0 = torch.argmax(logits, dim=-1)
    if bool(due.any()):
        probs = torch.softmax(logits[due], dim=-1)  # (N, V)
        try:
            x0[due] = torch.distributions.Categorical(probs=probs).sample()
        except (ValueError, RuntimeError):  # probabilities that are not finite: Dream keeps the argmax
            pass
    return x0


def sample_positions(conf: torch.Tensor, k: torch.Tensor, alg_temp: float) -> torch.Tensor:
    """Dream's `alg_temp` > 0: each row's k positions drawn without replacement from softmax(conf / alg_temp)
    over the positions that compete (conf > -inf), in position order. conf (B, L), k (B,) -> (B, L) bool."""
    transfer = torch.zeros_like(conf, dtype=torch.bool)
    for j in range(conf.shape[0]):
        if int(k[j]) > 0:
            cand = torch.nonzero(conf[j] > NEG_INF).squeeze(1)
            w = F.softmax(conf[j, cand] / alg_temp, dim=-1)
            transfer[j, cand[torch.multinomial(w, num_samples=int(k[j]))]] = True
    return transfer


def scored_rows(mask_index: torch.Tensor, end: int, cfg: SamplerConfig) -> slice:
    """The canvas rows a step scores: from the first row that holds a mask to the block's end.

    No proposal or confidence outside them is ever used (rows before hold no mask, rows after wait for later
    blocks), so the processors and the softmax skip them: with a long prompt and a KV cache those passes over
    (B, L, V) were most of the time outside the forward. At T > 0 or with random remasking every row is scored,
    because the reference draws its noise over the whole canvas and the draws must stay the same."""
    L = mask_index.shape[1]
    if cfg.temperature > 0 or cfg.remasking == "random":
        return slice(0, L)
    first = mask_index[:, :end].any(0).nonzero()
    return slice(int(first[0]) if len(first) else end - 1, end)


# ----------------------------------------------------------------------------------------- the loop
@dataclass
class Decoded:
    x: torch.Tensor  # (B, P + G) final canvas
    commit_step: torch.Tensor  # (B, G)
    confidence: torch.Tensor  # (B, G)
    block_of: torch.Tensor  # (B, G)
    nfe: int
    tokens_forwarded: int
    info: dict[str, Any]
    forks: dict[str, StepState | None] = field(default_factory=dict)

    @classmethod
    def of(cls, st: StepState, forks: dict[str, StepState | None]) -> "Decoded":
        return cls(x=st.x, commit_step=st.commit_step, confidence=st.confidence, block_of=st.block_of, nfe=st.nfe,
                   tokens_forwarded=st.tokens_forwarded, info=st.info, forks=forks)


@torch.no_grad()
def diffuse(model, prompt: torch.Tensor, attention_mask: torch.Tensor | None, cfg: SamplerConfig,
            hooks: Sequence[StepHook] = (), sample_ids: Sequence[str] = (),
            forks: dict[str, Callable[[StepState], torch.Tensor]] | None = None, resume: StepState | None = None,
            stop_after_forks: bool = False) -> Decoded:
    """Decode one left-padded batch. prompt (B, P) long; attention_mask (B, P) or None.

    `forks` name -> predicate (B,) bool on the state: at the first step where any row is due, a fork of the
    state (`StepState.fork`) is kept as `Decoded.forks[name]` if every row is due then, else None (rows
    would part ways). `stop_after_forks` returns once every fork is taken. `resume` continues a fork of the
    same prompts and settings (no KV cache): the fork step's hooks run, then decoding goes on as if never
    interrupted.
    """
    cfg.validate()
    if resume is not None and cfg.cache != "none":
        raise ValueError("resuming a fork needs cache='none' (the KV cache is not part of a fork)")
    mask_id, dev, (B, P), G = model.mask_id, model.device, prompt.shape, cfg.gen_length
    if attention_mask is not None:
        attention_mask = torch.cat([attention_mask.to(dev), attention_mask.new_ones((B, G)).to(dev)], dim=-1)
    prompt_index = torch.cat([prompt.to(dev) != mask_id, torch.zeros((B, G), dtype=torch.bool, device=dev)], 1)
    forward = CachedForward(model, cfg, attention_mask, prompt_index)  # padding counts as prompt, as in LLaDA
    schedule, edits, rule = get_schedule(cfg.schedule, cfg), build_processors(cfg, model), REMASKING[cfg.remasking]
    num_blocks = G // cfg.block_length
    steps = cfg.steps // num_blocks  # per block
    if resume is not None:
        st = resume.resumed(sample_ids)  # its step's commits are in, its hooks are not: they run first
    else:
        st = StepState.start(prompt, G, cfg.block_length, mask_id, sample_ids, dev)
        st.plan = schedule.plan(st.masks_in_block(), steps)
    pending, taken = dict(forks or {}), {}
    while True:
        if st.logits is not None:  # a step was taken: its hooks, then the next step
            if hooks:
                run_hooks(st, hooks, schedule, steps)
            st.i, st.step, st.logits = st.i + 1, st.step + 1, None
        open_ = st.masks_open()  # (B,)
        # A block ends with no masks open or its plan done. As in the reference, a [MASK] the model itself
        # proposed then stays (a trained model never proposes it); masks a hook reopened are in the plan.
        if int(open_.max()) == 0 or (cfg.threshold is None and st.i >= st.plan.shape[1]):
            if st.block + 1 == num_blocks:
                break
            st.block, st.i = st.block + 1, 0
            # The plan counts the block's own masks (as the reference does); masks left earlier still
            # compete, since only positions after the block are excluded.
            st.plan = schedule.plan(st.masks_in_block(), steps)
            continue
        end = st.block_end
        mask_index = st.x == mask_id  # (B, L)
        logits, n = forward(st.x, end - cfg.block_length, end)  # (B, L, V)
        st.nfe, st.tokens_forwarded = st.nfe + 1, st.tokens_forwarded + n
        rows = scored_rows(mask_index, end, cfg)  # the rows that can commit (all of them at T > 0)
        logits = apply(edits.propose, logits[:, rows])  # (B, R, V)
        due = mask_index
        if cfg.remasking == "origin":  # Dream draws which masks commit first, then proposals for those only
            due = mask_index.clone()
            due[:, end:] = False
            due[due.clone()] = torch.rand(int(due.sum()), device=dev) < schedule.p_transfer(st.i, steps, dev)
        x0 = st.x.clone()
        x0[:, rows] = propose(logits, due[:, rows], cfg.temperature, schedule.proposals)  # (B, L)
        st.logits = logits = apply(edits.confidence, logits)
        part = rule(logits, x0[:, rows])  # (B, R)
        conf = part.new_full(x0.shape, NEG_INF)
        conf[:, rows] = part
        conf[:, end:] = NEG_INF  # later blocks wait
        conf = conf.masked_fill(~mask_index, NEG_INF)  # only masks compete
        x0 = torch.where(mask_index, x0, st.x)
        if cfg.threshold is not None:  # every proposal at or above it, and at least the best one
            k = (conf.double() >= cfg.threshold).sum(1).clamp(min=1)  # in float64: bf16 would read 0.9 as 0.898
        else:
            k = st.plan[:, st.i]
        if cfg.remasking == "origin":
            chosen = due
        elif cfg.alg_temp:
            chosen = sample_positions(conf, k.minimum(open_), cfg.alg_temp)
        else:
            chosen = top_k(conf, k.minimum(open_))
        st.commit(chosen, x0, conf)
        for name, due in [(name, p(st)) for name, p in pending.items()]:
            if bool(due.any()):
                del pending[name]
                taken[name] = st.fork() if bool(due.all()) else None
        if forks and stop_after_forks and not pending:
            break
    return Decoded.of(st, taken)


def top_k(conf: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """conf (B, L), k (B,) -> (B, L) bool: each row's k most confident positions (`torch.topk`, as LLaDA)."""
    transfer = torch.zeros_like(conf, dtype=torch.bool)
    for j in range(conf.shape[0]):
        if int(k[j]) > 0:
            transfer[j, torch.topk(conf[j], k=int(k[j])).indices] = True
    return transfer


def run_hooks(st: StepState, hooks: Sequence[StepHook], schedule: Schedule, steps: int) -> None:
    """Call each hook (the contract is `StepState`'s); if the masks open changed, re-plan the block's rest."""
    before = st.masks_open()
    for hook in hooks:
        hook(st)
    after = st.masks_open()
    if not torch.equal(before, after):
        first = min(st.i + 1, steps - 1)  # at least one step more, also after the block's last
        st.plan = torch.cat([st.plan[:, :st.i + 1], schedule.plan(after, steps, first)], 1)


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
             forks_out: dict[str, StepState | None] | None = None, resume: StepState | None = None,
             stop_after_forks: bool = False) -> list[dict[str, Any]]:
    """Generate for prompts (texts or token id lists), in batches of `cfg.batch_size`.

    Returns one partial sample record per prompt (`records.decoded_records`, docs/conventions.md): prompt,
    prompt_ids, output_ids, raw_text, text_surface, text_ctc, text, trajectory, nfe, seconds, sampler. Each
    batch is seeded with `cfg.seed`, so a prompt's output at T > 0 depends on the batch it was decoded in.
    `forks` (taken into `forks_out`) and `resume` are `diffuse`'s, for prompts that fit one batch; with
    `stop_after_forks` decoding stops once the forks are taken and no records are returned.
    """
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
        chunk, batch = ids_list[s: s + cfg.batch_size], slice(s, s + cfg.batch_size)
        if max(len(c) for c in chunk) + cfg.gen_length > model.max_length:
            raise BadInput(f"prompt ({max(len(c) for c in chunk)} tokens) + gen-length {cfg.gen_length} exceed "
                           f"the model's max length {model.max_length}")
        ids, am = pad_left(chunk, pad)
        # The attention mask is passed only when padding exists: the reference gets none for equal lengths.
        am_arg = am if bool((am == 0).any()) else None
        torch.manual_seed(cfg.seed)
        t0 = time.perf_counter()
        out = diffuse(model, ids, am_arg, cfg, hooks=hooks, sample_ids=sample_ids[batch],
                      forks=forks, resume=resume, stop_after_forks=stop_after_forks)
        if forks_out is not None:
            forks_out.update(out.forks)
        if stop_after_forks:
            return []
        secs = (time.perf_counter() - t0) / len(chunk)
        records += decoded_records(model, texts[batch], chunk, out, cfg, sample_ids[batch], secs)
    return records


def resolve_sampler(overrides: dict[str, Any] | None, model=None) -> SamplerConfig:
    """An option not given comes from the checkpoint sidecar's `sampler`, then the adapter's defaults for its
    family (`model.extra["sampler_defaults"]`: Dream's plan and filters), then the defaults
    (docs/conventions.md). A checkpoint without sidecar settings has no block layout of its own: there
    `block_length` and `steps` default to the gen length (one block, one token per step)."""
    base = asdict(SamplerConfig())
    base.update(((getattr(model, "extra", None) or {}).get("sampler_defaults")) or {})  # the adapter's (Dream's)
    side = (getattr(model, "sidecar", None) or {}).get("sampler") or {}
    given = {k: v for k, v in (overrides or {}).items() if v is not None and k in base}
    if not side:
        g = given.get("gen_length", base["gen_length"])
        base.update(block_length=g, steps=g)
    base.update({k: v for k, v in side.items() if k in base})
    base.update(given)
    return SamplerConfig.from_dict(base).validate()
