import pytest
import torch
import torch.nn.functional as F

from saelab import precision
from saelab.activations import ActivationSource, hook_activations, tokenize_texts, tinyworld_texts


@pytest.fixture
def fresh(monkeypatch):
    """Empty "auto" caches for one test, so earlier tests' choices do not leak in (or out)."""
    monkeypatch.setattr(precision, "_CHOSEN", {})
    monkeypatch.setattr(precision, "_PROBED", {})
    monkeypatch.setattr(precision, "TIMINGS", {})
    return precision


def fake_timer(monkeypatch, seconds):
    """Make time_steps run each step once and report `seconds` (the decision rule, without a stopwatch)."""
    def time_steps(steps, **kwargs):
        for fn in steps.values():
            fn()
        return {name: seconds[name] for name in steps}
    monkeypatch.setattr(precision, "time_steps", time_steps)


def test_cpu_supports_fp32_and_bf16_and_fp16_says_it_needs_cuda():
    assert precision.supported_precisions("cpu") == ["fp32", "bf16"]
    with pytest.raises(ValueError, match="CUDA"):
        precision.check_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="one of"):
        precision.check_precision("half", "cpu")
    assert precision.check_precision("auto", "cpu") == "auto"


def test_autocast_runs_matmuls_in_the_precision_and_fp32_changes_nothing():
    a, w = torch.randn(4, 8), torch.randn(3, 8)
    with precision.autocast("fp32"):
        assert torch.equal(F.linear(a, w), F.linear(a, w))
        assert F.linear(a, w).dtype == torch.float32
    with precision.autocast("bf16"):
        assert F.linear(a, w).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="resolve 'auto'"):
        precision.autocast("auto")


@pytest.mark.parametrize("bf16_seconds, expected", [(0.5, "bf16"), (0.9, "fp32"), (2.0, "fp32")])
def test_auto_keeps_bf16_only_when_at_least_1_2x_faster(fresh, monkeypatch, bf16_seconds, expected):
    monkeypatch.setitem(fresh._PROBED, ("bf16", "cpu"), 2.0)  # the hardware screen lets bf16 through
    fake_timer(monkeypatch, {"fp32": 1.0, "bf16": bf16_seconds})
    assert fresh.pick_precision("unit", lambda p: (lambda: None), "cpu", work=2**30) == expected


@pytest.mark.parametrize("slow, expected", [("fp32", "bf16"), ("bf16", "fp32")])
def test_auto_picks_the_step_the_real_stopwatch_finds_faster(fresh, monkeypatch, slow, expected):
    """No fake timer: time_steps really times both steps, and one of them sleeps 0.1 s."""
    import time as clock
    monkeypatch.setitem(fresh._PROBED, ("bf16", "cpu"), 2.0)  # the hardware screen lets bf16 through

    def make_step(p):
        return (lambda: clock.sleep(0.1)) if p == slow else (lambda: None)
    assert fresh.pick_precision("unit", make_step, "cpu", work=2**30) == expected
    (seconds,) = fresh.TIMINGS.values()
    assert seconds[slow] >= 0.1 > seconds[expected]


def test_auto_times_once_per_shape_and_caches_the_answer(fresh, monkeypatch):
    monkeypatch.setitem(fresh._PROBED, ("bf16", "cpu"), 2.0)
    fake_timer(monkeypatch, {"fp32": 1.0, "bf16": 0.4})
    made = []

    def make_step(p):
        made.append(p)
        return lambda: None
    for _ in range(3):
        assert fresh.pick_precision("unit", make_step, "cpu", shape_key=(1, 2), work=2**30) == "bf16"
    assert made == ["fp32", "bf16"]
    fresh.pick_precision("unit", make_step, "cpu", shape_key=(3, 4), work=2**30)
    assert made == ["fp32", "bf16", "fp32", "bf16"]  # another shape is timed again


def test_auto_never_times_toy_work_or_hardware_without_fast_bf16(fresh, monkeypatch):
    made = []

    def make_step(p):
        made.append(p)
        return lambda: None
    assert fresh.pick_precision("toy", make_step, "cpu", work=precision.TOY_WORK - 1) == "fp32"
    assert made == [] and fresh._PROBED == {}  # not even the probe ran
    monkeypatch.setitem(fresh._PROBED, ("bf16", "cpu"), 0.25)  # bf16 matmuls 4x slower (e.g. an AVX2 CPU)
    assert fresh.pick_precision("slow", make_step, "cpu", work=2**30) == "fp32"
    assert made == []  # a full-size bf16 step would have taken minutes: never timed


def test_matmul_probe_measures_a_real_ratio(fresh):
    ratio = fresh.matmul_speedup("bf16", "cpu")
    assert ratio > 0 and fresh._PROBED[("bf16", "cpu")] == ratio


# --- activation collection -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_world():
    from saelab.models import load_model
    from saelab.tinyworld import FILES_DIR, MLP_HOOK
    return load_model(str(FILES_DIR), device="cpu"), MLP_HOOK


def test_bf16_activations_are_float32_and_equal_to_within_bf16_rounding(tiny_world):
    model, hook = tiny_world
    texts = [t for t, _ in zip(tinyworld_texts(seed=3), range(4))]
    tokens, _ = tokenize_texts(model, texts)
    for name in (hook, "blocks.2.hook_resid_post"):  # hook_mlp_out is a bf16 matmul; resid adds float32
        exact = hook_activations(model, name, tokens, precision="fp32")
        fast = hook_activations(model, name, tokens, precision="bf16")
        assert fast.dtype == torch.float32 and fast.shape == exact.shape
        rel = ((fast - exact).norm() / exact.norm()).item()
        assert 0 < rel < 0.01, f"{name}: relative error {rel:.4f} (bf16 keeps 8 bits: ~0.4% per rounding)"


def test_activation_source_resolves_auto_and_fp32_matches_today(tiny_world):
    model, hook = tiny_world

    def collect(p):
        src = ActivationSource(model, hook, "tiny-world", batch_size=64, progress=False, precision=p)
        return src, src.collect(500)
    src_auto, auto = collect("auto")
    assert src_auto.precision in ("fp32", "bf16") and "precision=" in repr(src_auto)
    src_fp32, exact = collect("fp32")
    assert auto.dtype == torch.float32
    if src_auto.precision == "fp32":
        assert torch.equal(auto, exact)
    else:
        assert ((auto - exact).norm() / exact.norm()) < 0.01
    with pytest.raises(ValueError, match="CUDA"):
        ActivationSource(model, hook, "tiny-world", precision="fp16")
