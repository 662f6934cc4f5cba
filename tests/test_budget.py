import pytest

from saelab.budget import BUDGETS, budget_name, training_budget


@pytest.fixture(autouse=True)
def no_budget_setting(monkeypatch):
    monkeypatch.delenv("SAELAB_BUDGET", raising=False)


def test_gpu_gets_the_blogs_configuration():
    b = training_budget("cuda", available=100 * 2**30)
    assert b.name == "gpu"
    assert b.cfg["batch_size"] == 4096 and b.cfg["n_steps"] >= 1000 and b.n_train >= 1_000_000
    assert "GPU" in b.why and "blog" in b.why


def test_cpu_gets_the_reduced_configuration_and_says_why():
    b = training_budget("cpu", available=100 * 2**30)
    assert b.name == "cpu"
    assert b.cfg["n_steps"] * b.cfg["batch_size"] < BUDGETS["gpu"].cfg["n_steps"] * BUDGETS["gpu"].cfg["batch_size"]
    assert "no GPU" in b.why and "\n" not in b.why


def test_cpu_budget_keeps_the_lessons():
    """Dead latents must be able to appear in the main run and be resampled in the short runs."""
    b = BUDGETS["cpu"]
    assert b.cfg["dead_after"] < b.cfg["n_steps"]
    assert b.short_steps // 2 >= 1 and b.n_train >= 10 * b.cfg["batch_size"] and b.n_eval_texts >= 1


def test_setting_overrides_the_device(monkeypatch):
    monkeypatch.setenv("SAELAB_BUDGET", "smoke")
    assert training_budget("cuda").name == "smoke"
    assert "SAELAB_BUDGET=smoke" in training_budget("cpu").why
    monkeypatch.setenv("SAELAB_BUDGET", "auto")
    assert budget_name("cpu")[0] == "cpu"


def test_unknown_setting_says_what_to_use(monkeypatch):
    monkeypatch.setenv("SAELAB_BUDGET", "fast")
    with pytest.raises(ValueError, match="SAELAB_BUDGET must be one of"):
        training_budget("cpu")


def test_budget_is_a_copy():
    training_budget("cpu", available=100 * 2**30).cfg["n_steps"] = 1
    assert BUDGETS["cpu"].cfg["n_steps"] != 1


GiB = 2**30


def test_every_budget_says_how_many_seeds():
    assert training_budget("cuda", available=100 * GiB).n_seeds == 3
    assert training_budget("cpu", available=100 * GiB).n_seeds == 1
    assert BUDGETS["small"].n_seeds == 1 and BUDGETS["smoke"].n_seeds == 1


def test_short_memory_picks_the_small_budget_and_says_why():
    """Binder: ~2 GB, of which DistilGPT2 and the kernel take ~0.9 GB."""
    b = training_budget("cpu", available=int(1.1 * GiB))
    assert b.name == "small"
    assert "'cpu' needs ~2.9 GB of memory where 1.1 GB is free" in b.why and "\n" not in b.why
    assert b.memory_bytes() <= 1.1 * GiB < BUDGETS["cpu"].memory_bytes()
    assert training_budget("cpu", available=8 * GiB).name == "cpu"


def test_small_budget_keeps_every_lesson():
    small, cpu = BUDGETS["small"], BUDGETS["cpu"]
    assert small.cfg["n_steps"] == cpu.cfg["n_steps"] and small.cfg["dead_after"] < small.cfg["n_steps"]
    assert small.n_train < cpu.n_train and small.n_train >= 10 * small.cfg["batch_size"]
    assert small.short_steps // 2 >= 1 and small.n_eval_texts >= 1 and len(small.sweep_expansions) >= 3


def test_a_gpu_without_room_for_the_blogs_run_steps_down():
    assert training_budget("cuda", available=100 * GiB).name == "gpu"
    b = training_budget("cuda", available=6 * GiB)
    assert b.name == "cpu" and "'gpu' needs" in b.why


def test_not_even_the_smallest_fits_says_what_to_do():
    b = training_budget("cpu", available=GiB // 4)
    assert b.name == "small" and "SAELAB_OFFLINE=1" in b.why and "Colab" in b.why


def test_a_forced_budget_ignores_memory(monkeypatch):
    monkeypatch.setenv("SAELAB_BUDGET", "cpu")
    assert training_budget("cpu", available=GiB // 4).name == "cpu"
