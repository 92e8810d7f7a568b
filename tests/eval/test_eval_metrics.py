"""Wilson interval, behaviour entropy, summaries and their text form."""

from __future__ import annotations

import math

import pytest

from imitari.eval.metrics import EpisodeResult, behaviour_entropy, format_summary, summarize, wilson_interval

Z95 = 1.959963984540054


def wilson_by_hand(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson (1927), written out independently of the implementation."""
    p = k / n
    centre = (2 * n * p + z**2) / (2 * (n + z**2))
    half = z * math.sqrt(z**2 + 4 * n * p * (1 - p)) / (2 * (n + z**2))
    return centre - half, centre + half


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        (0, 10, (0.0, 0.2775)),  # published: rule-of-thumb tables for 0/10, Wilson upper 27.75%
        (10, 10, (0.7225, 1.0)),
        (47, 50, (0.8378, 0.9794)),
        (5, 10, (0.2366, 0.7634)),
    ],
)
def test_wilson_known_values(k: int, n: int, expected: tuple[float, float]) -> None:
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)
    assert (low, high) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)


def test_wilson_edges_and_errors() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(3, 20, confidence=0.99)
    low95, high95 = wilson_interval(3, 20)
    assert low < low95 and high > high95
    assert wilson_interval(7, 20) == pytest.approx(tuple(1 - x for x in reversed(wilson_interval(13, 20))))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 10, confidence=1.0)


def test_behaviour_entropy() -> None:
    assert behaviour_entropy(["left", "right"] * 5) == pytest.approx(1.0)
    assert behaviour_entropy(["left"] * 10) == 0.0
    assert behaviour_entropy(["left"] * 10, num_labels=2) == 0.0
    three_to_one = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert behaviour_entropy(["a", "a", "a", "b"]) == pytest.approx(three_to_one)
    assert behaviour_entropy(["a", "b"], num_labels=3) == pytest.approx(1 / math.log2(3))
    with pytest.raises(ValueError, match="declared"):
        behaviour_entropy(["a", "b", "c"], num_labels=2)


def _results(successes: int, n: int) -> list[EpisodeResult]:
    return [EpisodeResult(seed=i, success=i < successes, return_=float(i % 3), length=80 + i % 2) for i in range(n)]


def test_summarize_and_format() -> None:
    summary = summarize(_results(47, 50))
    assert (summary.n, summary.successes, summary.success_rate) == (50, 47, 0.94)
    assert summary.route_shares is None and summary.behaviour_entropy is None
    assert summary.mean_length == pytest.approx(80.5)
    line = format_summary(summary)
    assert line.startswith("success 47/50 = 94.0% (95% CI 83.8-97.9%)  return ")
    assert "\n" not in line
    assert format_summary(summarize([])) == "no episodes"


def test_summarize_routes() -> None:
    results = _results(4, 4)
    for r, route in zip(results, ["left", "left", "left", None]):
        if route:
            r.info["route"] = route
    summary = summarize(results, behaviours=["left", "right"])
    assert summary.route_shares == {"left": 1.0, "right": 0.0}
    assert summary.behaviour_entropy == 0.0
    results[3].info["route"] = "right"
    summary = summarize(results)
    assert summary.route_shares == {"left": 0.75, "right": 0.25}
    assert summary.behaviour_entropy == pytest.approx(0.811278, abs=1e-6)
    assert "routes  left 75% / right 25%  (behaviour entropy 0.81)" in format_summary(summary)


def test_conditional_entropy_of_repeated_rollouts() -> None:
    from imitari.eval.metrics import conditional_entropy

    def runs(seed: int, labels: str) -> list[EpisodeResult]:
        return [EpisodeResult(seed=seed, success=True, return_=0.0, length=1, info={"route": x}) for x in labels]

    # Two starts, each always taking its own route: every route is used (behaviour entropy 1)
    # but nothing varies from a given start (conditional entropy 0).
    fixed = runs(1, "aaaa") + runs(2, "bbbb")
    assert summarize(fixed).behaviour_entropy == pytest.approx(1.0)
    assert conditional_entropy(fixed) == 0.0
    assert conditional_entropy(runs(1, "abab") + runs(2, "aaaa")) == pytest.approx(0.5)
    assert conditional_entropy(runs(1, "aabb"), num_labels=4) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="two labelled rollouts"):
        conditional_entropy(runs(1, "a") + runs(2, "b"))


def test_summary_reports_the_mean_score_when_episodes_have_one() -> None:
    scored = [EpisodeResult(seed=s, success=s == 0, return_=0.0, length=1, info={"score": v})
              for s, v in enumerate([1.0, 0.5])]
    summary = summarize(scored)
    assert summary.mean_score == pytest.approx(0.75)
    assert "score 0.750" in format_summary(summary)
    assert summarize([EpisodeResult(seed=0, success=True, return_=0.0, length=1)]).mean_score is None
