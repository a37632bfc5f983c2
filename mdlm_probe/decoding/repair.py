"""Repair stages: decode-time remedies that revisit committed tokens (docs/repair.md).

A repair runs right after a step's forward, before the rows to score are chosen (`loop.step`):

    repair(st, logits (B, L, V), masks (B, L)) -> (logits, masks)

It sees the model's scores of every committed token under the current context and may return committed
positions to [MASK] or move tokens. When it changes the canvas it forwards the repaired canvas once more (an
NFE, counted) only where it must score an edited canvas (`edit`); reopened positions sit out the step and
compete from the next one, whose forward sees the masks. It re-plans the block's rest (`selector.replan`) so
the reopened positions get filled. `SamplerConfig.repair` names one:

    remask-low  committed tokens whose probability under the current logits fell below `repair_threshold`
                (committed at or above it, now below) go back to [MASK], lowest first
    seam        a shift seam in the committed canvas (adjacent repeated tokens, a lone space or `<slack>`
                inside a digit run) that the model doubts (some token in the window below the threshold):
                a window of `repair_window` positions either side goes back to [MASK]
    edit        the inverse of the shift interventions: delete a duplicated token and pull the tail left, or
                open a gap at the least likely token and push the tail right, when the edited canvas's
                committed tokens score a higher mean log-probability than the current one's
    probe       every `repair_every` steps, score each committed token with itself masked (`repair_stride`
                extra forwards); at the leftmost one below the threshold delete a duplicate or open a gap

Budget: at most `repair_budget` positions reopened or moved per sample and block, so every block still ends
(each reopening costs budget; the plan selector's re-plan gives at least one more step, the threshold selector
never proposes [MASK]). `repair_scope`: "block" (the current block's committed tokens) or "all" (earlier
blocks' too). Each repair lands in `st.info["repair"][sample_id]` as {"step", "block", "kind", "positions"}
(response positions; kind remask | delete | insert | rejected-delete | rejected-insert: an edit tried and
not taken, which costs budget too, so its extra forwards are bounded), kept as the record's `hook_info["repair"]`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.registry import Registry

REPAIRS = Registry("repair")
SCOPES = ("block", "all")
KEY = "repair"  # st.info[KEY][sample_id]: the events (kept across forks, see StepState.fork)


def repair_name(cfg) -> str:
    return getattr(cfg, "repair", None) or "none"


class Repair:
    """The base: no repair. Subclasses implement `reopen` (positions to mask) or override `__call__`."""

    def __init__(self, cfg, model, forward, selector):
        self.forward, self.selector = forward, selector
        self.threshold, self.budget = cfg.repair_threshold, cfg.repair_budget
        self.window, self.scope, self.block_length = cfg.repair_window, cfg.repair_scope, cfg.block_length
        self.slack_id = getattr(model, "slack_id", None)
        self.digits = _digit_ids(model)

    @classmethod
    def check(cls, cfg) -> None:
        if not 0.0 <= cfg.repair_threshold <= 1.0:
            raise BadInput(f"repair-threshold {cfg.repair_threshold} is not in [0, 1]")
        if cfg.repair_budget < 0:
            raise BadInput(f"repair-budget {cfg.repair_budget} is negative")
        if cfg.repair_window < 0:
            raise BadInput(f"repair-window {cfg.repair_window} is negative")
        if cfg.repair_scope not in SCOPES:
            raise BadInput(f"unknown repair-scope {cfg.repair_scope!r}; expected block or all")
        if cfg.repair and cfg.remasking == "origin":
            raise BadInput("--repair needs a plan or threshold selector (remasking origin draws its own commits)")

    def __call__(self, st, logits: torch.Tensor, masks: torch.Tensor):
        return logits, masks

    # ---- helpers the strategies share ------------------------------------------------------------
    def candidates(self, st, x: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) bool: committed response tokens of the canvas x (default st.x) in scope (the current block,
        or every block so far)."""
        x = st.x if x is None else x
        end = st.block_end
        start = st.prompt_len if self.scope == "all" else end - self.block_length
        out = torch.zeros_like(x, dtype=torch.bool)
        out[:, start:end] = x[:, start:end] != st.mask_id
        return out

    def token_prob(self, st, logits: torch.Tensor) -> torch.Tensor:
        """(B, L) float: each canvas token's probability under `logits` (float32 softmax), 1 outside scope."""
        end = st.block_end
        start = st.prompt_len if self.scope == "all" else end - self.block_length
        p = torch.ones(st.x.shape, dtype=torch.float32, device=st.x.device)
        lp = F.softmax(logits[:, start:end].float(), dim=-1)
        p[:, start:end] = torch.gather(lp, -1, st.x[:, start:end, None]).squeeze(-1)
        return p

    def left(self, st) -> torch.Tensor:
        """(B,) budget left in the current block, per row."""
        events = st.info.get(KEY, {})
        used = [sum(len(e["positions"]) for e in events.get(sid, []) if e["block"] == st.block)
                for sid in _ids(st)]
        return torch.tensor([max(self.budget - u, 0) for u in used], dtype=torch.long)

    def record(self, st, row: int, kind: str, positions: list[int]) -> None:
        sid = _ids(st)[row]
        st.info.setdefault(KEY, {}).setdefault(sid, []).append(
            {"step": st.step, "block": st.block, "kind": kind, "positions": positions})

    def replan(self, st, masks_before: torch.Tensor) -> None:
        """Plan the steps after this one for the masks this step will leave (it still commits its count)."""
        now = st.masks_open()
        if torch.equal(now, masks_before):
            return
        this_step = st.plan[:, st.i].minimum(now) if st.i < st.plan.shape[1] else torch.zeros_like(now)
        self.selector.replan(st, (now - this_step).clamp(min=0))

    def remask(self, st, pick: torch.Tensor, kind: str) -> None:
        """Return the positions pick (B, L) bool to [MASK], clear their trajectory entries, record them."""
        P = st.prompt_len
        for row in range(pick.shape[0]):
            pos = pick[row].nonzero().squeeze(1)
            if len(pos):
                self.record(st, row, kind, [int(q) - P for q in pos])
        st.x[pick] = st.mask_id
        g = pick[:, P:]
        st.commit_step[g], st.confidence[g], st.block_of[g] = -1, 0.0, -1

    def reopened(self, st) -> torch.Tensor:
        """(B, L) bool: positions reopened earlier in the current block."""
        out = torch.zeros_like(st.x, dtype=torch.bool)
        events = st.info.get(KEY, {})
        for row, sid in enumerate(_ids(st)):
            for e in events.get(sid, []):
                if e["block"] == st.block:
                    out[row, [st.prompt_len + q for q in e["positions"]]] = True
        return out

    def fell(self, st, p: torch.Tensor) -> torch.Tensor:
        """(B, L) bool: committed tokens now below the threshold that were committed at or above it."""
        conf = torch.zeros_like(p)
        conf[:, st.prompt_len:] = st.confidence
        return (p < self.threshold) & (conf >= self.threshold)


class Reopening(Repair):
    """A repair that returns positions to [MASK]: `reopen(st, logits) -> (B, L) bool`, capped by the budget."""

    def reopen(self, st, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions to reopen (B, L) bool, priority (B, L) float: lower goes first under the budget)."""
        raise NotImplementedError

    def __call__(self, st, logits, masks):
        left = self.left(st)
        if int(left.max()) == 0:
            return logits, masks
        want, prio = self.reopen(st, logits)
        want &= ~self.reopened(st)  # a position reopens once per block: the model's second answer stands
        pick = torch.zeros_like(want)
        for row in range(want.shape[0]):
            pos = want[row].nonzero().squeeze(1)
            k = min(len(pos), int(left[row]))
            if k:
                pick[row, pos[torch.argsort(prio[row, pos], stable=True)[:k]]] = True
        if not bool(pick.any()):
            return logits, masks
        before = st.masks_open()
        self.remask(st, pick, "remask")
        self.replan(st, before)
        # No extra forward: the reopened positions sit out this step (this forward saw their old tokens) and
        # compete from the next one, whose forward sees the masks.
        return logits, masks


@REPAIRS.register("none")
class NoRepair(Repair):
    """Repair off: the step goes on with its own logits and masks."""


@REPAIRS.register("remask-low")
class RemaskLow(Reopening):
    """Committed tokens the model now scores below the threshold go back to [MASK], least likely first."""

    def reopen(self, st, logits):
        p = self.token_prob(st, logits)
        return self.candidates(st) & self.fell(st, p), p


@REPAIRS.register("seam")
class Seam(Reopening):
    """A seam the shift left (see the module docstring) that the model doubts: a window around it reopens."""

    def reopen(self, st, logits):
        cand, p = self.candidates(st), self.token_prob(st, logits)
        seam = seams(st.x, cand, self.digits, self.slack_id, space=self.digits.get("space"))  # (B, L)
        doubted = seam & _widen(cand & (p < self.threshold), self.window)  # a doubted token near the seam
        return _widen(doubted, self.window) & cand, p


@REPAIRS.register("edit")
class Edit(Repair):
    """Delete a duplicated token (tail pulled left) or open a gap at the least likely token (tail pushed right)
    when the edited canvas's committed tokens score higher (mean log-probability) than the current one's."""

    def __call__(self, st, logits, masks):
        left, cand = self.left(st), self.candidates(st)
        if int(left.max()) == 0:
            return logits, masks
        p = self.token_prob(st, logits)
        doubt = (cand & self.fell(st, p) & ~self.reopened(st)).tolist()  # each position tried once per block
        edits = []  # (row, kind, position)
        for row in range(st.x.shape[0]):
            if int(left[row]) == 0:
                continue
            pos = set(cand[row].nonzero().squeeze(1).tolist())
            low = [q for q in sorted(pos) if doubt[row][q]]
            dup = [q for q in low if q - 1 in pos and int(st.x[row, q]) == int(st.x[row, q - 1])]
            if dup:
                edits.append((row, "delete", dup[0]))
            elif low:
                edits.append((row, "insert", min(low, key=lambda q: float(p[row, q]))))
        if not edits:
            return logits, masks
        trial = st.x.clone()
        moved = {}
        for row, kind, q in edits:
            trial[row], moved[row] = shift_row(st.x[row], q, kind, st.prompt_len, st.mask_id)
        end = st.block_end
        new_logits, n = self.forward(trial, end - self.block_length, end)  # (B, L, V) the edited canvases
        st.nfe, st.tokens_forwarded = st.nfe + 1, st.tokens_forwarded + n
        old = _mean_logprob(logits, st.x, cand)
        new = _mean_logprob(new_logits, trial, self.candidates(st, trial))
        before, logits = st.masks_open(), logits.clone()
        for row, kind, q in edits:  # a trial costs budget whether taken or not, so the extra forwards are bounded
            if float(new[row]) > float(old[row]):
                self.apply(st, row, kind, q, trial[row], moved[row])
                logits[row] = new_logits[row]
            else:
                self.record(st, row, "rejected-" + kind, [q - st.prompt_len])
        self.replan(st, before)
        return logits, st.x == st.mask_id

    def apply(self, st, row: int, kind: str, q: int, x_row: torch.Tensor, src: torch.Tensor) -> None:
        """Take the edited row; the trajectory entries move with their tokens (-1 where a gap opened)."""
        st.x[row] = x_row
        for t, empty in ((st.commit_step, -1), (st.confidence, 0.0), (st.block_of, -1)):
            old = t[row].clone()
            t[row] = torch.where(src >= 0, old[src.clamp(min=0)], torch.full_like(old, empty))
        self.record(st, row, kind, [q - st.prompt_len])


@REPAIRS.register("probe")
class Probe(Edit):
    """Every `repair_every` steps of a block, each committed token is scored with itself hidden: `repair_stride`
    extra forwards, each with every stride-th committed token of the block masked and the rest of the canvas as
    is. A model that sees a token nearly copies it, so the visible scores the other strategies read hardly
    move after a shift; hidden, a displaced token no longer fits its neighbours. The leftmost token scored
    below the threshold is the seam: if it equals its left neighbour it is deleted (tail pulled left), else a
    gap opens before it (tail pushed right) and is decoded like any mask. One more forward then scores the
    edited canvas for this step's commits. Every forward is counted."""

    def __init__(self, cfg, model, forward, selector):
        super().__init__(cfg, model, forward, selector)
        self.every, self.stride, self.mask_id = cfg.repair_every, cfg.repair_stride, model.mask_id

    @classmethod
    def check(cls, cfg) -> None:
        super().check(cfg)
        if cfg.repair_every < 1 or cfg.repair_stride < 1:
            raise BadInput(f"repair-every {cfg.repair_every} and repair-stride {cfg.repair_stride} must be >= 1")
        if cfg.repair == "probe" and cfg.cache != "none":
            raise BadInput("--repair probe forwards altered canvases, which a cache would store; use --cache none")

    def hidden_prob(self, st, cand: torch.Tensor) -> torch.Tensor:
        """(B, L) float: each committed token's probability with itself masked (1 outside cand)."""
        end = st.block_end
        p = torch.ones(st.x.shape, dtype=torch.float32, device=st.x.device)
        col = torch.arange(st.x.shape[1], device=st.x.device)[None] % self.stride
        for k in range(self.stride):
            hide = cand & (col == k)  # (B, L)
            if not bool(hide.any()):
                continue
            xk = st.x.masked_fill(hide, self.mask_id)
            logits, n = self.forward(xk, end - self.block_length, end)  # (B, L, V)
            st.nfe, st.tokens_forwarded = st.nfe + 1, st.tokens_forwarded + n
            got = torch.gather(F.softmax(logits.float(), dim=-1), -1, st.x[..., None]).squeeze(-1)
            p = torch.where(hide, got, p)
        return p

    def __call__(self, st, logits, masks):
        left, cand = self.left(st), self.candidates(st)
        if st.i == 0 or st.i % self.every or int(left.max()) == 0 or not bool(cand.any()):
            return logits, masks
        doubt = (cand & (self.hidden_prob(st, cand) < self.threshold)).tolist()
        before, edited = st.masks_open(), []
        for row in range(st.x.shape[0]):
            seam = next((q for q, d in enumerate(doubt[row]) if d), None)
            if seam is None or int(left[row]) == 0:
                continue
            dup = seam > 0 and bool(cand[row, seam - 1]) and int(st.x[row, seam]) == int(st.x[row, seam - 1])
            kind = "delete" if dup else "insert"
            new_row, src = shift_row(st.x[row], seam, kind, st.prompt_len, st.mask_id)
            self.apply(st, row, kind, seam, new_row, src)
            edited.append(row)
        if not edited:
            return logits, masks
        end = st.block_end
        new_logits, n = self.forward(st.x, end - self.block_length, end)  # (B, L, V) the edited canvases
        st.nfe, st.tokens_forwarded = st.nfe + 1, st.tokens_forwarded + n
        logits = logits.clone()
        logits[edited] = new_logits[edited]
        self.replan(st, before)
        return logits, st.x == st.mask_id


def shift_row(x: torch.Tensor, q: int, kind: str, P: int, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x (L,) canvas; delete position q (tail left, a mask at the end) or insert a mask at q (tail right, the
    last token dropped). Returns (new row, src (G,) long: each response position's old position, -1 = new)."""
    G = x.shape[0] - P
    src = torch.arange(G, device=x.device)
    r = q - P
    if kind == "delete":
        src = torch.cat([src[:r], src[r + 1:], src.new_full((1,), -1)])
    else:
        src = torch.cat([src[:r], src.new_full((1,), -1), src[r:G - 1]])
    resp = x[P:]
    new = torch.where(src >= 0, resp[src.clamp(min=0)], torch.full_like(resp, mask_id))
    return torch.cat([x[:P], new]), src


def seams(x: torch.Tensor, cand: torch.Tensor, digits: dict, slack_id: int | None, space: int | None = None,
          ) -> torch.Tensor:
    """(B, L) bool seam points among committed tokens `cand`: a token equal to its left neighbour, a lone
    `<slack>` or space between two digits, a digit run interrupted by a repeated character."""
    d = torch.zeros_like(cand)
    ids = digits.get("ids")
    if ids is not None:
        d = torch.isin(x, ids.to(x.device)) & cand
    both = cand[:, 1:] & cand[:, :-1]
    out = torch.zeros_like(cand)
    out[:, 1:] |= both & (x[:, 1:] == x[:, :-1])  # adjacent repeat
    gap = torch.zeros_like(cand)
    for tid in (slack_id, space):
        if tid is not None:
            gap |= x == tid
    out[:, 1:-1] |= gap[:, 1:-1] & d[:, :-2] & d[:, 2:] & cand[:, 1:-1]  # lone slack/space inside a number
    return out


def _widen(m: torch.Tensor, w: int) -> torch.Tensor:
    """m (B, L) bool dilated by w positions either side."""
    if w == 0:
        return m.clone()
    f = F.max_pool1d(m[:, None].float(), kernel_size=2 * w + 1, stride=1, padding=w)
    return f[:, 0] > 0


def _mean_logprob(logits: torch.Tensor, x: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """(B,) mean log-probability of the tokens x at the positions cand under logits."""
    lp = torch.gather(F.log_softmax(logits.float(), dim=-1), -1, x[..., None]).squeeze(-1)  # (B, L)
    return (lp * cand).sum(1) / cand.sum(1).clamp(min=1)


def _digit_ids(model) -> dict:
    """The ids of the one-token digits 0-9 and of a space, where the tokenizer has them."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        return {}
    vocab = tok.get_vocab()
    ids = [vocab[c] for c in "0123456789" if c in vocab]
    return {"ids": torch.tensor(ids, dtype=torch.long) if ids else None, "space": vocab.get(" ")}


def _ids(st) -> list[str]:
    return list(st.sample_ids) or [str(i) for i in range(st.x.shape[0])]


def build_repair(model, cfg, forward, selector) -> Repair:
    return REPAIRS.get(repair_name(cfg))(cfg, model, forward, selector)
