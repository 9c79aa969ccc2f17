"""The jury's votes turned into one score and verdict by every aggregation, and the panel's
agreement, on exact numbers: jurors on different scales, weights, ties and split panels."""

from __future__ import annotations

import statistics

import pytest

from llmmesh.jury.aggregation import Agreement, Method, Vote, aggregate, agreement

# The same panel as the end-to-end test in test_jury.py, normalised: factual 5/5 and 4/5
# (threshold 4/5), helpfulness 7/10 (threshold 6/10), clarity 2/5 (threshold 3/5), weights 1, 1, 2, 4.
PANEL = (Vote(1.0, 0.75, True, 1), Vote(0.75, 0.75, True, 1), Vote(6 / 9, 5 / 9, True, 2), Vote(0.25, 0.5, False, 4))
MEAN = sum(v.normalised for v in PANEL) / 4


@pytest.mark.parametrize(("method", "score", "passed"), [
    # mean 0.6667 >= mean threshold 0.6389
    (Method.MEAN, MEAN, True),
    # median (0.75 + 0.6667) / 2 = 0.7083 >= median threshold (0.5556 + 0.75) / 2 = 0.6528
    (Method.MEDIAN, (0.75 + 6 / 9) / 2, True),
    # three of four pass
    (Method.MAJORITY_VOTE, 0.75, True),
    # the heavy clarity juror drags it down: 0.5104 < weighted threshold 0.5764
    (Method.WEIGHTED_MEAN, (1.0 + 0.75 + 2 * 6 / 9 + 4 * 0.25) / 8, False),
])
def test_each_aggregation_on_a_mixed_panel(method: Method, score: float, passed: bool) -> None:
    assert aggregate(PANEL, method) == (pytest.approx(score), passed)


def test_a_score_equal_to_the_threshold_passes() -> None:
    votes = [Vote(0.6, 0.6, True), Vote(0.6, 0.6, True)]
    for method in (Method.MEAN, Method.MEDIAN, Method.WEIGHTED_MEAN):
        assert aggregate(votes, method) == (pytest.approx(0.6), True), method


def test_a_split_panel_has_no_majority_to_pass() -> None:
    split = [Vote(1.0, 0.5, True), Vote(0.0, 0.5, False)]
    assert aggregate(split, Method.MAJORITY_VOTE) == (0.5, False)
    assert aggregate([*split, Vote(0.9, 0.5, True)], Method.MAJORITY_VOTE) == (pytest.approx(2 / 3), True)
    assert agreement(split).pairwise_agreement == 0.0 and agreement(split).verdict_agreement == 0.5


def test_weights_only_matter_to_the_weighted_mean() -> None:
    votes = [Vote(1.0, 0.5, True, weight=1), Vote(0.0, 0.5, False, weight=3)]
    assert aggregate(votes, Method.WEIGHTED_MEAN) == (pytest.approx(0.25), False)
    assert aggregate(votes, Method.MEAN) == (pytest.approx(0.5), True)


def test_agreement_of_a_mixed_panel() -> None:
    got = agreement(PANEL)
    assert got.spread == pytest.approx(statistics.pstdev([v.normalised for v in PANEL]))
    assert (got.min_score, got.max_score) == (0.25, 1.0)
    assert got.verdict_agreement == 0.75  # three of four agree with the majority "pass"
    assert got.pairwise_agreement == 0.5  # of the 6 pairs, the 3 among the passing jurors agree


def test_a_lone_juror_agrees_with_itself() -> None:
    lone = [Vote(0.6, 0.75, False, weight=3)]
    assert agreement(lone) == Agreement(0.0, 0.6, 0.6, 1.0, 1.0)
    assert aggregate(lone, Method.WEIGHTED_MEAN) == (pytest.approx(0.6), False)


def test_no_votes_is_an_error_not_a_verdict() -> None:
    with pytest.raises(ValueError):
        aggregate([], Method.MEAN)
    with pytest.raises(ValueError):
        agreement([])
