"""The registries (adapters, benchmarks, failure-pattern detectors) are one generic Registry: a name registered
twice is refused, an unknown one is one line."""

from __future__ import annotations

import pytest

from mdlm_probe import adapters
from mdlm_probe.tasks import benchmarks
from mdlm_probe.runs import miners
from mdlm_probe.adapters import adapter_names
from mdlm_probe.core.exceptions import BadInput
from mdlm_probe.core.registry import Registry
from mdlm_probe.tasks.benchmarks import benchmark_names


def test_adapter_name_registered_twice_is_refused():
    adapter_names()  # the built-in adapters are registered
    before = dict(adapters.ADAPTERS)

    class Impostor(adapters.MaskedDiffusionModel):
        pass

    with pytest.raises(ValueError, match="adapter 'llada' is already registered"):
        adapters.register("llada")(Impostor)
    assert adapters.ADAPTERS == before  # the first registration stands


def test_benchmark_name_registered_twice_is_refused():
    benchmark_names()
    before = dict(benchmarks.BENCHMARKS)

    class Impostor(benchmarks.Benchmark):
        pass

    with pytest.raises(ValueError, match="benchmark 'gsm8k' is already registered"):
        benchmarks.register("gsm8k")(Impostor)
    assert benchmarks.BENCHMARKS == before
    assert Impostor.name == "base"  # refused before the class was touched


def test_detector_name_registered_twice_is_refused():
    before = dict(miners.DETECTORS)
    with pytest.raises(ValueError, match="detector 'trailing-zero' is already registered"):
        miners.detector("trailing-zero")(lambda rec: [])
    assert miners.DETECTORS == before


def test_registering_the_same_object_again_is_harmless():
    # Decorating the very same class twice (e.g. a module imported under two names) changes nothing.
    cls = benchmarks.BENCHMARKS["synthetic"]
    assert benchmarks.register("synthetic")(cls) is cls
    assert benchmarks.BENCHMARKS["synthetic"] is cls


def test_a_new_name_registers():
    try:
        @benchmarks.register("zz-test-bench")
        class New(benchmarks.Benchmark):
            pass

        assert benchmarks.BENCHMARKS["zz-test-bench"] is New and New.name == "zz-test-bench"
        assert "zz-test-bench" in benchmark_names()
    finally:
        benchmarks.BENCHMARKS.unregister("zz-test-bench")
    assert "zz-test-bench" not in benchmarks.BENCHMARKS


def test_each_registry_is_the_generic_one():
    # One Registry class serves adapters, benchmarks and detectors (and the decoding stages): the same rules.
    for registry in (adapters.ADAPTERS, benchmarks.BENCHMARKS, miners.DETECTORS):
        assert isinstance(registry, Registry)
    assert adapters.ADAPTERS["llada"].adapter_name == "llada"  # the adapter's name is set on its class
    assert miners.DETECTORS["trailing-zero"].pattern == "trailing-zero"


def test_an_unknown_name_is_one_line_of_bad_input():
    with pytest.raises(BadInput, match=r"^unknown benchmark 'gsm8kk'; expected one of .*gsm8k") as e:
        benchmarks.get_benchmark("gsm8kk")
    assert "\n" not in str(e.value)
    with pytest.raises(BadInput, match=r"^unknown adapter 'lladaa'; expected one of .*llada"):
        adapters.ADAPTERS.get("lladaa")
