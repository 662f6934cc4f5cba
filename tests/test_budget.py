import pytest

from saelab.budget import BUDGETS, budget_name, training_budget


@pytest.fixture(autouse=True)
def no_budget_setting(monkeypatch):
    monkeypatch.delenv("SAELAB_BUDGET", raising=False)


def test_gpu_gets_the_blogs_configuration():
    b = training_budget("cuda")
    assert b.name == "gpu"
    assert b.cfg["batch_size"] == 4096 and b.cfg["n_steps"] >= 1000 and b.n_train >= 1_000_000
    assert "GPU" in b.why and "blog" in b.why


def test_cpu_gets_the_reduced_configuration_and_says_why():
    b = training_budget("cpu")
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
    training_budget("cpu").cfg["n_steps"] = 1
    assert BUDGETS["cpu"].cfg["n_steps"] != 1
