"""The decoding pipeline: registered stages, each with its own checks, and a loop with no strategy branches."""

from __future__ import annotations

import ast
import inspect

import pytest
import torch

from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.registry import Registry
from mdlm_probe.decoding import (FORWARDS, PROPOSERS, SCHEDULES, SCORERS, SELECTORS, SamplerConfig, TakeForks,
                                 generate, loop)
from mdlm_probe.decoding.processors import NeverProposeMask
from mdlm_probe.decoding.scorers import Scorer
from mdlm_probe.decoding.selectors import Selector
from mdlm_probe.decoding.stages import build_pipeline, proposer_name, stage_classes


# ----------------------------------------------------------------------------------------- the registry
def test_registry_refuses_a_name_twice_and_lists_names_on_a_miss():
    reg = Registry("widget")

    @reg.register("a")
    class A:
        pass

    assert A.name == "a" and reg.get("a") is A and "a" in reg and list(reg) == ["a"]
    assert reg.register("a")(A) is A  # the same object again is harmless
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a")(type("B", (), {}))
    with pytest.raises(BadInput, match="unknown widget 'b'; expected one of a"):
        reg.get("b")


def test_registry_loader_runs_once_before_the_first_lookup():
    calls = []
    reg = Registry("thing", loader=lambda: (calls.append(1), reg.register("x")(len)))
    assert calls == []
    assert reg.names() == ["x"] and reg.get("x") is len and calls == [1]
    reg.names()
    assert calls == [1]


def test_every_stage_kind_has_its_builtins():
    assert {"none", "prefix", "dual"} <= set(FORWARDS.names())
    assert {"gumbel", "categorical"} <= set(PROPOSERS.names())
    assert {"low_confidence", "random", "maskgit_plus", "topk_margin", "entropy", "origin"} <= set(SCORERS.names())
    assert {"plan", "threshold", "origin"} <= set(SELECTORS.names())
    assert {"llada", "dream"} <= set(SCHEDULES.names())


# ----------------------------------------------------------------------------------------- settings -> stages
@pytest.mark.parametrize("kw, selector", [({}, "plan"), ({"threshold": 0.9}, "threshold"),
                                          ({"remasking": "origin", "schedule": "dream"}, "origin"),
                                          ({"selector": "plan", "threshold": 0.9}, "plan")])
def test_the_selector_follows_the_settings(kw, selector):
    classes = stage_classes(SamplerConfig(**kw))
    assert SELECTORS[selector] in classes


def test_the_proposer_defaults_to_the_schedules_family():
    assert proposer_name(SamplerConfig()) == "gumbel"
    assert proposer_name(SamplerConfig(schedule="dream")) == "categorical"
    assert proposer_name(SamplerConfig(schedule="dream", proposer="gumbel")) == "gumbel"


@pytest.mark.parametrize("kw, msg", [
    ({"threshold": 1.5}, "threshold 1.5 is not in"),
    ({"remasking": "origin"}, "needs --schedule dream"),
    ({"cache_refresh": -1}, "cache-refresh -1 is negative"),
    ({"cache": "prefix", "cache_refresh": -1}, "cache-refresh -1 is negative"),
    ({"top_p": 0.0}, "top-p 0.0 is not in"),
    ({"schedule": "dream", "eps": 1.0}, "eps 1.0 is not in"),
    ({"alg_temp": -1.0}, "alg-temp -1.0 is negative"),
    ({"remasking": "nope"}, "unknown remasking rule 'nope'"),
    ({"selector": "nope"}, "unknown selector 'nope'"),
    ({"cache": "nope"}, "unknown cache policy 'nope'"),
])
def test_each_stage_checks_its_own_settings(kw, msg):
    with pytest.raises(BadInput, match=msg):
        SamplerConfig(**kw).validate()


def test_settings_added_with_the_pipeline_leave_recorded_configs_unchanged():
    d = SamplerConfig().to_dict()
    assert "proposer" not in d and "selector" not in d  # earlier run directories stay comparable
    assert SamplerConfig(selector="threshold", threshold=0.5).to_dict()["selector"] == "threshold"


# ----------------------------------------------------------------------------------------- the loop
def _compares_a_string(fn) -> list[str]:
    tree = ast.parse(inspect.getsource(fn).lstrip())
    return [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Compare)
            and any(isinstance(c, ast.Constant) and isinstance(c.value, str) for c in [n.left, *n.comparators])]


def test_the_loop_has_no_branch_on_a_strategy_name():
    for fn in (loop.diffuse, loop.step, loop.run_hooks, loop.scored_rows):
        assert _compares_a_string(fn) == [], fn.__name__


def test_a_new_scorer_and_selector_are_one_class_each(tiny_random, monkeypatch):
    monkeypatch.setattr(SCORERS, "_items", dict(SCORERS._items))
    monkeypatch.setattr(SELECTORS, "_items", dict(SELECTORS._items))

    @SCORERS.register("test-leftmost")
    class Leftmost(Scorer):  # earlier positions first, whatever the model thinks
        def __call__(self, logits, x0):
            return -torch.arange(x0.shape[1], dtype=torch.float32).expand(x0.shape)

    @SELECTORS.register("test-two-per-step")
    class TwoPerStep(Selector):
        def count(self, conf, st):
            return torch.full((conf.shape[0],), 2)

        def block_over(self, st):
            return False  # the block ends when its masks are gone ...

        def processors(self, model):
            return [NeverProposeMask(model.mask_id)]  # ... so [MASK] must never be proposed

    cfg = SamplerConfig(gen_length=8, steps=8, block_length=8, remasking="test-leftmost", selector="test-two-per-step")
    rec = generate(tiny_random, ["12+30="], cfg)[0]
    assert rec["trajectory"]["commit_step"] == [0, 0, 1, 1, 2, 2, 3, 3]  # left to right, two at a time
    assert rec["nfe"] == 4 and rec["sampler"]["selector"] == "test-two-per-step"


def test_a_pipeline_has_one_stage_of_each_kind(tiny_random):
    cfg = SamplerConfig(gen_length=8, steps=4, block_length=8, threshold=0.5).validate()
    P = torch.zeros((1, 3), dtype=torch.bool)
    pipe = build_pipeline(tiny_random, cfg, None, torch.cat([~P, P.new_zeros((1, 8))], 1))
    assert type(pipe.selector).name == "threshold" and type(pipe.score).name == "low_confidence"
    assert [type(p).__name__ for p in pipe.edits.propose] == ["NeverProposeMask"]  # the selector's edit
    assert not pipe.every_row


# ----------------------------------------------------------------------------------------- forks
def test_a_fork_resumed_equals_the_whole_decode(tiny_random):
    cfg = SamplerConfig(gen_length=16, steps=16, block_length=8, temperature=0.7, batch_size=2)
    prompts = ["12+30=", "7+8="]
    whole = generate(tiny_random, prompts, cfg)
    forks = TakeForks({"mid": lambda st: st.committed_fraction() >= 0.5}, halt=True)
    assert generate(tiny_random, prompts, cfg, hooks=[forks]) == []  # halted: no half-decoded records
    assert not forks.pending and forks.taken["mid"] is not None
    resumed = generate(tiny_random, prompts, cfg, state=forks.taken["mid"])
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(resumed) == strip(whole)


def test_a_fork_is_refused_with_a_cache(tiny_random):
    cfg = SamplerConfig(gen_length=8, steps=8, block_length=8)
    forks = TakeForks({"first": lambda st: torch.ones(1, dtype=torch.bool)}, halt=True)
    generate(tiny_random, ["1+1="], cfg, hooks=[forks])
    cached = SamplerConfig(gen_length=8, steps=8, block_length=8, cache="prefix")
    assert tiny_random.supports_cache
    with pytest.raises(ValueError, match="resuming a fork needs the exact forward"):
        generate(tiny_random, ["1+1="], cached, state=forks.taken["first"])
