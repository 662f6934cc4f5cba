import pytest

from saelab import seeds


def test_unset_gives_the_default_seeds(monkeypatch):
    monkeypatch.delenv("SAELAB_SEED", raising=False)
    assert seeds.seed(3) == 3 and seeds.seeds(3) == [0, 1, 2]


def test_offset_shifts_every_seed(monkeypatch):
    monkeypatch.setenv("SAELAB_SEED", "1000")
    assert seeds.seed(3) == 1003 and seeds.seeds(2, start=5) == [1005, 1006]


def test_bad_offset_says_what_to_do(monkeypatch):
    monkeypatch.setenv("SAELAB_SEED", "abc")
    with pytest.raises(ValueError, match="whole number"):
        seeds.seed(0)


def test_no_runs_is_an_error():
    with pytest.raises(ValueError, match="at least 1"):
        seeds.seeds(0)
