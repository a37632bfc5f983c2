"""lm-evaluation-harness integration: the `mdlm_probe` model class and the ELBO estimator.

* `generate_until` runs our diffusion sampler (`sampler.generate`) and cuts the collapsed text at the
  first stop string of the request's `until`.
* `loglikelihood` is a Monte-Carlo estimate of the masked-diffusion ELBO of the continuation given the
  context, as LLaDA's `eval_llada.py` does: draw a number of masked tokens m in 1..T (stratified over a
  batch), mask m random continuation positions (never the context), and average
  (T / m) * sum over masked positions of log p(token | the partly masked sequence).
  It is a lower bound on log p(continuation | context), good for ranking choices in multiple-choice tasks.
* `loglikelihood_rolling` scores a whole document the same way (window by window), so perplexities are
  upper bounds.

lm-eval's own CLI does not import this module, so `mdlm-probe lm-eval -- <lm_eval args>` and
`python -m mdlm_probe.cli.lm_eval <lm_eval args>` (mdlm_probe/cli/lm_eval.py: the argument handling) call
`register` and hand over to lm-eval's CLI.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import fields
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from mdlm_probe.adapters import MaskedDiffusionModel, describe_checkpoint, load_model
from mdlm_probe.core.cards import build_card
from mdlm_probe.core.checkpoints import checkpoint_hash
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.decoding import SamplerConfig, diffuse, generate, resolve_sampler
from mdlm_probe.tasks.presets import card_protocol, get_preset
from mdlm_probe.tasks.scoring import cut_at_stops
from .settings import default_ckpt, resolve_settings

MODEL_NAME = "mdlm_probe"
SAMPLER_FIELDS = {f.name: f for f in fields(SamplerConfig)}
log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------- pure helpers
cut_at_stop = cut_at_stops  # lm-eval's `until`: the one stop-string cutter is scoring's


def mask_counts(T: int, b: int, gen: torch.Generator) -> torch.Tensor:
    """(b,) numbers of masked positions in 1..T, stratified: one uniform offset, then evenly spaced.

    Low-discrepancy draws as in LLaDA's eval: each value is uniform on 1..T (for b a multiple of T the
    batch covers 1..T exactly), so the estimate stays unbiased with less variance than iid draws.
    """
    k = int(torch.randint(1, T + 1, (), generator=gen))
    x = torch.round(torch.linspace(float(k), k + (b - 1) * (T / b), steps=b)).long()
    return ((x - 1) % T) + 1


def _logits(model, x: torch.Tensor, ctx_len: int, cfg_scale: float) -> torch.Tensor:
    """x (B, L) -> logits (B, L, V); with cfg_scale > 0 the unconditional pass masks the context."""
    if cfg_scale <= 0:
        return model(x)
    un = x.clone()
    un[:, :ctx_len] = model.mask_id
    cond, unc = torch.chunk(model(torch.cat([x, un], 0)), 2, dim=0)
    return unc + (cfg_scale + 1) * (cond - unc)


@torch.no_grad()
def elbo_loglikelihood(model, context: Sequence[int], target: Sequence[int], mc_num: int = 128,
                       mc_batch_size: int = 32, seed: int = 0, cfg_scale: float = 0.0) -> float:
    """Monte-Carlo ELBO of `target` given `context` (token ids): a lower bound on log p(target | context).

    Each request draws its masks from a generator seeded with `seed`, so the value does not depend on
    request order, batching or the process that computes it (and equal-length choices share masks).
    """
    T, P = len(target), len(context)
    if T == 0:
        return 0.0
    if mc_num <= 0 or mc_batch_size <= 0:
        raise BadInput("mc_num and mc_batch_size must be positive")
    dev = model.device
    seq = torch.tensor([*context, *target], dtype=torch.long, device=dev)  # (L,)
    tgt = seq[P:]  # (T,)
    gen = torch.Generator().manual_seed(int(seed))
    total, done = 0.0, 0
    while done < mc_num:
        b = min(mc_batch_size, mc_num - done)
        m = mask_counts(T, b, gen)  # (b,)
        # Ranks of iid uniforms are a uniform random permutation: the first m ranks are the masked set.
        is_mask = torch.rand((b, T), generator=gen).argsort(1).argsort(1) < m[:, None]  # (b, T)
        is_mask, m = is_mask.to(dev), m.to(dev)
        x = seq.repeat(b, 1)  # (b, L)
        x[:, P:] = torch.where(is_mask, model.mask_id, x[:, P:])
        logp = F.log_softmax(_logits(model, x, P, cfg_scale)[:, P:].float(), dim=-1)  # (b, T, V)
        tok_logp = logp.gather(-1, tgt.expand(b, T)[..., None]).squeeze(-1)  # (b, T)
        total += float(((tok_logp * is_mask).sum(1) * (T / m)).sum())
        done += b
    return total / mc_num


@torch.no_grad()
def greedy_matches(model, context: Sequence[int], target: Sequence[int], cfg_scale: float = 0.0) -> bool:
    """Whether decoding the continuation one token per step (most confident first, T = 0) gives `target`."""
    T = len(target)
    if T == 0:
        return True
    cfg = SamplerConfig(gen_length=T, steps=T, block_length=T, temperature=0.0, cfg_scale=cfg_scale)
    prompt = torch.tensor([list(context)], dtype=torch.long)  # (1, P)
    out = diffuse(model, prompt, None, cfg).x[0, len(context):]
    return out.tolist() == list(target)


# ----------------------------------------------------------------------------------------- per-request sampler
def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def _coerce(name: str, value: Any) -> Any:
    """A model_args / gen_kwargs string -> the SamplerConfig field's type."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in ("none", "null", ""):
        return None
    kind = str(SAMPLER_FIELDS[name].type)  # e.g. "float | None": the annotation, since a default may be None
    try:
        if "bool" in kind:
            return _as_bool(value)
        if "int" in kind:
            return int(value)
        if "float" in kind:
            return float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name}={value!r} is not a valid value") from None
    return str(value)


def request_sampler(model, explicit: dict[str, Any], gen_kwargs: dict[str, Any] | None
                    ) -> tuple[SamplerConfig, list[str], list[str]]:
    """Settings for one generate_until request -> (config, stop strings, ignored gen_kwargs keys).

    Precedence: sampler settings given in model_args > the request's gen_kwargs (task YAML or
    --gen_kwargs; `max_gen_toks` -> gen_length, `do_sample=False` -> temperature 0, sampler field names
    as themselves) > the checkpoint sidecar > the defaults. When gen_length comes from the request and
    block_length/steps were not given, the sidecar's schedule is scaled to it (same steps per token).
    """
    gk = dict(gen_kwargs or {})
    until = gk.pop("until", None)
    until = [until] if isinstance(until, str) else [str(u) for u in (until or [])]
    max_gen = gk.pop("max_gen_toks", None)
    do_sample = gk.pop("do_sample", None)
    chosen = {k: _coerce(k, gk.pop(k)) for k in list(gk) if k in SAMPLER_FIELDS}
    if max_gen is not None and "gen_length" not in chosen:
        chosen["gen_length"] = int(max_gen)
    if do_sample is False and "temperature" not in chosen:
        chosen["temperature"] = 0.0
    gen_from_request = "gen_length" in chosen and "gen_length" not in explicit
    chosen.update(explicit)
    if "gen_length" in chosen:
        base = resolve_sampler(None, model)  # sidecar, then defaults
        g = chosen["gen_length"]
        bl = chosen.get("block_length")
        if bl is None:
            bl = min(base.block_length, g)
            if not gen_from_request and g % bl:
                bl = g  # an explicit gen_length the sidecar's blocks do not divide: one block
        if gen_from_request:
            g = math.ceil(g / bl) * bl  # a whole number of blocks; stop strings cut the surplus
        nb = max(1, g // bl)
        if chosen.get("steps") is None:
            per_block = round(g * base.steps / base.gen_length / nb)
            chosen["steps"] = min(max(1, per_block), bl) * nb
        chosen.update(gen_length=g, block_length=bl)
    return resolve_sampler(chosen, model), until, sorted(gk)


# ----------------------------------------------------------------------------------------- the lm-eval model
def _lm_base():
    try:
        from lm_eval.api.model import LM
    except ImportError:  # pragma: no cover - depends on the environment
        raise BadInput("lm-eval is not installed: pip install 'mdlm-probe[lm-eval]'") from None
    return LM


class MDLMProbeLM(_lm_base()):
    """lm-eval model `mdlm_probe`: any checkpoint `load_model` accepts, decoded with our sampler.

    model_args: pretrained (checkpoint name/folder/Hub name, or a loaded MaskedDiffusionModel), adapter,
    dtype, device, add_bos, mc_num, mc_batch_size, check_greedy, max_length, preset (a published preset:
    its sampler settings and dtype under those given here, over the task's gen_kwargs; resolved by
    `runs.settings.resolve_settings` as `eval` resolves them. lm-eval, not the model, decides the task, the
    few-shot count and the chat template: `mdlm-probe lm-eval` fills them from the preset, and the card
    records what ran and where it came from), and every
    SamplerConfig field (gen_length, steps, block_length, temperature, cfg_scale, remasking, threshold,
    cache, seed, batch_size, collapse, logits_eos_inf, confidence_eos_eot_inf, ...).
    """

    def __init__(self, pretrained: Any = None, adapter: str | None = None, dtype: str | None = None,
                 device: str | None = None, add_bos: Any = "auto", mc_num: int = 128, mc_batch_size: int = 32,
                 check_greedy: Any = False, max_length: int | None = None, max_batch_size: Any = None,
                 preset: str | None = None, **sampler: Any):
        super().__init__()
        unknown = sorted(set(sampler) - set(SAMPLER_FIELDS))
        if unknown:
            raise BadInput(f"unknown {MODEL_NAME} model_args {', '.join(unknown)}; expected pretrained, adapter, "
                           f"dtype, device, add_bos, mc_num, mc_batch_size, check_greedy, max_length, preset or a "
                           f"sampler setting ({', '.join(SAMPLER_FIELDS)})")
        if str(sampler.get("batch_size")).startswith("auto"):
            sampler.pop("batch_size")  # lm-eval's auto batch sizing does not apply: sidecar/default
        self.given = {k: _coerce(k, v) for k, v in sampler.items() if _coerce(k, v) is not None}
        self.preset = preset or None
        # a preset whose protocol stops at EOS only (Dream's `escape_until`) ignores the task's stop strings
        self.escape_until = bool(self.preset) and get_preset(self.preset).settings.get("stop_rule") == "eos"
        if pretrained is None:
            pretrained = default_ckpt(self.preset)
        # every setting resolved once, as `eval` resolves it (model_args > preset > sidecar > adapter > defaults)
        info = pretrained if isinstance(pretrained, MaskedDiffusionModel) else describe_checkpoint(str(pretrained), adapter)
        self.settings = resolve_settings(ckpt=None if isinstance(pretrained, MaskedDiffusionModel) else str(pretrained),
                                         model=info, preset=self.preset, sampler=self.given, dtype=dtype,
                                         command="lm-eval", given_source="model_args")
        # the settings from model_args and the preset win over the task's gen_kwargs, as in the reference
        # evaluators, whose gen_length is the model's whatever the task's max_gen_toks
        self.explicit = {k: v for k, v in self.settings.sampler.to_dict().items()
                         if self.settings.provenance.get(k, "").startswith(("model_args", "preset "))}
        dtype = self.settings.dtype
        self.dtype_arg, self._chat_applied = dtype, False  # lm-eval says whether it applies the template

        self.accelerator = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by accelerate/torchrun: data parallel
            from accelerate import Accelerator

            # On CPUs accelerate only goes multi-process (gloo) when told cpu=True.
            acc = Accelerator(cpu=not torch.cuda.is_available() or str(device).startswith("cpu"))
            if acc.num_processes > 1:
                self.accelerator = acc
                self._rank, self._world_size = acc.process_index, acc.num_processes
                device = str(acc.device)
        device = _pick_device(device)
        if isinstance(pretrained, MaskedDiffusionModel):
            self.model = pretrained.to(device=device) if device else pretrained
        else:
            self.model = load_model(str(pretrained), adapter=adapter, device=device, dtype=dtype)
        self._device = self.model.device
        self.tokenizer = self.model.tokenizer
        self.add_bos = add_bos
        self.mc_num, self.mc_batch_size = int(mc_num), int(mc_batch_size)
        if self.mc_num <= 0 or self.mc_batch_size <= 0:
            raise BadInput("mc_num and mc_batch_size must be positive")
        self.check_greedy = _as_bool(check_greedy)
        self.max_length = int(max_length or self.model.max_length)
        self.base = self.settings.sampler  # model_args validated now, not mid-run
        self._warned: set[str] = set()

    # ---- lm-eval plumbing ---------------------------------------------------------------------
    @property
    def device(self):
        return self._device

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", self.model.name)).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        """lm-eval asks this before the run: whether --apply_chat_template is on (recorded for the card; where
        it differs from the preset's, the provenance says the lm-eval arguments decided)."""
        self._chat_applied = bool(chat_template)
        if self._chat_applied != self.settings.chat:
            self.settings.provenance["chat"] = "lm-eval arguments (--apply_chat_template)"
        return getattr(self.tokenizer, "chat_template", None) if chat_template else ""

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The chat rendered as lm-eval's HF model renders it: a history that ends with an assistant turn
        (a task's gen_prefix, e.g. humaneval_instruct's "```python") comes without a generation prompt and is
        continued, not closed by an end-of-turn token (`continue_final_message`)."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise BadInput(f"{self.model.name} has no chat template; drop --apply_chat_template")
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt,
                                                  continue_final_message=not add_generation_prompt)

    def all_gather(self, tensor):
        return tensor if self.accelerator is None else self.accelerator.gather(tensor)

    def gather_object(self, obj, dst=0):
        if self.accelerator is None:
            return [obj]
        result = [None] * self.world_size if self.rank == dst else None
        torch.distributed.gather_object(obj=obj, object_gather_list=result, dst=dst)
        return result

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    def get_model_info(self) -> dict[str, Any]:
        """What lm-eval writes into its results' "config": the checkpoint, the sampler, and the run card
        (the preset and the settings given over it among the rest)."""
        path = self.model.path
        digest = checkpoint_hash(path) if path is not None else None  # as eval's card: the weights' sha256
        card = build_card(benchmark=get_preset(self.preset).benchmark if self.preset else "lm-eval",
                          checkpoint=path, checkpoint_hash=digest,
                          dtype=self.dtype_arg, device=str(self.device), overrides=self.given,
                          chat=self._chat_applied, preset=self.preset, provenance=self.settings.provenance,
                          protocol=card_protocol(self.preset))
        card["scorer"], card["extraction"] = "the lm-eval task's metrics", "the lm-eval task's filters"
        if self.preset:  # what the preset asks lm-eval for (`mdlm-probe lm-eval` passes it as arguments)
            card["preset_protocol"] = {"lm_eval_task": self.settings.lm_eval_task,
                                       "num_fewshot": self.settings.num_fewshot,
                                       "fewshot_as_multiturn": self.settings.fewshot_as_multiturn}
        return {"mdlm_probe_ckpt": self.model.name, "mdlm_probe_sampler": self.base.to_dict(),
                "mdlm_probe_mc_num": self.mc_num, "mdlm_probe_preset": self.preset, "mdlm_probe_card": card}

    # ---- tokens -------------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        bos = getattr(self.tokenizer, "bos_token_id", None)
        want_bos = bos is not None if self.add_bos == "auto" else _as_bool(self.add_bos)
        if want_bos and bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        return ids

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Context and continuation ids; trailing spaces of the context move to the continuation."""
        n = len(context) - len(context.rstrip())
        if n:
            context, continuation = context[:-n], context[-n:] + continuation
        whole, ctx = self._encode(context + continuation), self._encode(context)
        if whole[:len(ctx)] != ctx:  # the tokenizer merged across the boundary: encode apart
            return ctx, self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        return ctx, whole[len(ctx):]

    def _fit(self, ctx: list[int], room: int) -> list[int]:
        """Keep the last tokens of the context so context + `room` fit in max_length."""
        keep = self.max_length - room
        if keep < 0:
            raise BadInput(f"{room} tokens to score/generate exceed the model's max length {self.max_length}")
        return ctx[len(ctx) - keep:] if len(ctx) > keep else ctx

    def _progress(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, disable=self.rank != 0 or total == 0)

    # ---- requests -----------------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        out: list[str | None] = [None] * len(requests)
        groups: dict[str, tuple[SamplerConfig, list]] = {}
        for i, req in enumerate(requests):
            context, gen_kwargs = req.args
            cfg, until, ignored = request_sampler(self.model, self.explicit, gen_kwargs)
            for k in ignored:
                if k not in self._warned:
                    self._warned.add(k)
                    log.warning("%s: gen_kwargs %r has no diffusion-sampler meaning; ignored", MODEL_NAME, k)
            key = repr(sorted(cfg.to_dict().items()))
            groups.setdefault(key, (cfg, []))[1].append((i, self._fit(self._encode(context), cfg.gen_length), until))
        bar = self._progress(len(requests), "mdlm_probe generate_until")
        for cfg, items in groups.values():
            items.sort(key=lambda t: -len(t[1]))  # similar lengths together: less padding
            for s in range(0, len(items), cfg.batch_size):
                chunk = items[s: s + cfg.batch_size]
                recs = generate(self.model, [ids for _, ids, _ in chunk], cfg)
                for (i, _, until), rec in zip(chunk, recs):
                    out[i] = rec["text"] if self.escape_until else cut_at_stop(rec["text"], until)
                    self.cache_hook.add_partial("generate_until", requests[i].args, out[i])
                bar.update(len(chunk))
        bar.close()
        return out  # type: ignore[return-value]

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = []
        bar = self._progress(len(requests), "mdlm_probe loglikelihood")
        for req in requests:
            ctx, cont = self._encode_pair(*req.args)
            ctx = self._fit(ctx, len(cont))
            ll = elbo_loglikelihood(self.model, ctx, cont, self.mc_num, self.mc_batch_size, self.base.seed,
                                    self.base.cfg_scale)
            greedy = bool(self.check_greedy) and greedy_matches(self.model, ctx, cont, self.base.cfg_scale)
            out.append((ll, greedy))
            self.cache_hook.add_partial("loglikelihood", req.args, (ll, greedy))
            bar.update(1)
        bar.close()
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """ELBO of each whole document, in windows of half the max length, each given the tokens before it."""
        out = []
        win = max(1, self.max_length // 2)
        for req in requests:
            (text,) = req.args
            ids = self._encode(text)
            bos = ids[:1] if ids and ids[0] == getattr(self.tokenizer, "bos_token_id", None) else []
            body = ids[len(bos):]
            total = 0.0
            for s in range(0, len(body), win):
                ctx = self._fit(bos + body[:s], len(body[s: s + win]))
                total += elbo_loglikelihood(self.model, ctx, body[s: s + win], self.mc_num, self.mc_batch_size,
                                            self.base.seed, self.base.cfg_scale)
            out.append(total)
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return out


def _pick_device(device: str | None) -> str | None:
    """lm-eval's CLI asks for cuda:0 by default; fall back to the CPU (with a warning) where there is none."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else None
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        log.warning("%s: no CUDA device; running on the CPU", MODEL_NAME)
        return "cpu"
    return str(device)


# ----------------------------------------------------------------------------------------- registration
def register() -> type:
    """Register `mdlm_probe` with lm-eval (idempotent). Load lm-eval's own models first: its registry only
    fills itself lazily while it is empty."""
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import model_registry, register_model

    if MODEL_NAME not in model_registry or model_registry.get(MODEL_NAME) is not MDLMProbeLM:
        register_model(MODEL_NAME)(MDLMProbeLM)
    return MDLMProbeLM
