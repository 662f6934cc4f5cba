import pytest

from saelab.evaluation import difference_verdict
from saelab.verdicts import aa_rate, false_alarm_rate, verdict


def test_verdict_needs_ranges_that_do_not_overlap():
    assert verdict([1, 2, 3], [4, 5, 6]) == "lower"
    assert verdict([4, 5, 6], [1, 2, 3]) == "higher"
    assert verdict([1, 2, 5], [4, 5, 6]) == "no clear difference"
    assert verdict([1, 2, 4], [4, 5, 6]) == "no clear difference"  # a tie is an overlap
    assert difference_verdict([1], [2]) == "lower"


def test_verdict_rejects_an_empty_arm():
    with pytest.raises(ValueError, match="at least one seed"):
        verdict([], [1.0])


def test_false_alarm_rate_is_two_orderings_out_of_all():
    assert false_alarm_rate(3) == pytest.approx(0.1)
    assert false_alarm_rate(5) == pytest.approx(2 / 252)
    assert false_alarm_rate(1, 1) == 1.0
    with pytest.raises(ValueError):
        false_alarm_rate(0)


def test_aa_rate_of_distinct_values_matches_the_formula_whatever_the_values():
    for values in ([0.3, 0.1, 0.7, 0.2, 0.9, 0.4, 0.5, 0.8], [5, 1, 4, 2, 8, 7, 6, 3, 9, 0]):
        assert aa_rate(values, 3) == pytest.approx(false_alarm_rate(3))
    assert aa_rate(list(range(10)), 5) == pytest.approx(false_alarm_rate(5))


def test_aa_rate_with_ties_fires_less_and_needs_enough_runs():
    assert aa_rate([1.0] * 6, 3) == 0.0
    with pytest.raises(ValueError, match="at least 6 runs"):
        aa_rate([1, 2, 3, 4, 5], 3)
