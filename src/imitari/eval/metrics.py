"""Evaluation metrics: per-episode results, their summary, and the Wilson score interval.

A success rate from 50 episodes is a noisy estimate, so every summary carries a confidence
interval. The Wilson score interval is used rather than the normal approximation because it
stays inside [0, 1] and keeps a sensible width at 0/n and n/n, which is exactly where a good
policy lands.

Tasks with several ways to succeed (e.g. `builtin/two_routes`) report a discrete behaviour
label per episode in `info["route"]`; the summary then also gives the share of each label and
the normalised behaviour entropy of D3IL (Jia et al. 2024): the entropy of the label
distribution divided by its maximum, so 1.0 means the modes are used equally often and 0.0
means the policy collapsed onto one mode. The conditional behaviour entropy (D3IL) asks the same
of repeated rollouts from one start: the mean over starts of the normalised entropy of the labels
of that start's repeats (0 for a policy that always does the same thing from a given start, even
if different starts lead it different ways). Tasks whose `info` carries a running "score" (PushT's
best clipped coverage) get its mean over episodes as well.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

BEHAVIOUR_KEY = "route"
"""The `info` key that carries a discrete behaviour label, copied into `EpisodeResult.info`."""
MAX_LISTED_BEHAVIOURS = 6
"""Summaries list each label's share up to this many labels, else only their number (a maze's
routes are one per start)."""
SCORE_KEY = "score"
"""The `info` key of a task's per-episode score (its final value counts), e.g. PushT's."""


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion `successes / n`.

    Returns `(low, high)` as fractions in [0, 1]; `(0.0, 1.0)` when `n == 0` (no evidence).
    """
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n (got successes={successes}, n={n})")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence})")
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denominator
    # The exact bounds at 0/n and n/n are 0 and 1; clamp away float round-off there.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def behaviour_entropy(labels: Sequence[str], *, num_labels: int | None = None) -> float:
    """Entropy of the label distribution in bits, divided by log2 of the number of labels.

    `num_labels` is the number of behaviours the task declares; by default the number of
    distinct labels seen. With fewer than two possible labels the entropy is 0.0.
    """
    if not labels:
        raise ValueError("behaviour entropy needs at least one label")
    counts = Counter(labels)
    k = len(counts) if num_labels is None else num_labels
    if k < len(counts):
        raise ValueError(f"{len(counts)} distinct labels seen but only num_labels={k} declared")
    if k < 2:
        return 0.0
    probs = np.array(list(counts.values()), dtype=np.float64) / len(labels)
    return float(-(probs * np.log2(probs)).sum() / math.log2(k))


@dataclass
class EpisodeResult:
    """One evaluation episode."""

    seed: int
    success: bool
    """`info["success"]` was true at some step."""
    return_: float
    """Sum of the rewards."""
    length: int
    """Number of environment steps."""
    info: dict[str, Any] = field(default_factory=dict)
    """Extras from the final `info`, e.g. the behaviour label under "route"."""

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-friendly row: seed, success, return, length and the extras."""
        return {"seed": self.seed, "success": self.success, "return": self.return_, "length": self.length, **self.info}


@dataclass
class EvalSummary:
    """Aggregate of a list of `EpisodeResult`s."""

    n: int
    successes: int
    success_rate: float
    ci_low: float
    """95% Wilson interval of the success rate."""
    ci_high: float
    mean_return: float
    std_return: float
    mean_length: float
    route_shares: dict[str, float] | None = None
    """Share of each behaviour label among the labelled episodes; None if no episode has one."""
    behaviour_entropy: float | None = None
    """Normalised behaviour entropy in [0, 1]; None if no episode has a label."""
    mean_score: float | None = None
    """Mean of the episodes' final `info["score"]`; None if the task reports none."""


def summarize(results: Sequence[EpisodeResult], *, behaviours: Sequence[str] | None = None) -> EvalSummary:
    """Success rate with its Wilson interval, return and length statistics, behaviour shares.

    `behaviours` declares the task's possible labels, so that a policy that only ever takes
    one of two routes scores entropy 0 even though only one label was seen; labels are read
    from `EpisodeResult.info["route"]`, and episodes without one are left out of the shares.
    """
    n = len(results)
    successes = sum(1 for r in results if r.success)
    low, high = wilson_interval(successes, n)
    returns = np.array([r.return_ for r in results], dtype=np.float64)
    labels = [str(r.info[BEHAVIOUR_KEY]) for r in results if r.info.get(BEHAVIOUR_KEY) is not None]
    shares: dict[str, float] | None = None
    entropy: float | None = None
    scores = [float(r.info[SCORE_KEY]) for r in results if r.info.get(SCORE_KEY) is not None]
    if labels:
        counts = Counter(labels)
        names = sorted(set(counts) | set(behaviours or ()))
        shares = {name: counts[name] / len(labels) for name in names}
        entropy = behaviour_entropy(labels, num_labels=len(names) if behaviours else None)
    return EvalSummary(
        n=n,
        successes=successes,
        success_rate=successes / n if n else 0.0,
        ci_low=low,
        ci_high=high,
        mean_return=float(returns.mean()) if n else 0.0,
        std_return=float(returns.std()) if n else 0.0,
        mean_length=float(np.mean([r.length for r in results])) if n else 0.0,
        route_shares=shares,
        behaviour_entropy=entropy,
        mean_score=float(np.mean(scores)) if scores else None,
    )


def conditional_entropy(results: Sequence[EpisodeResult], *, num_labels: int | None = None) -> float:
    """D3IL's conditional behaviour entropy of repeated rollouts: results sharing a seed share a
    start; the mean over seeds of the normalised entropy of their behaviour labels.

    `num_labels` normalises every start's entropy by log(num_labels); by default each start's
    own maximum, log(its number of repeats) capped by the number of labels seen anywhere.
    ValueError if no seed has two labelled repeats."""
    by_seed: dict[int, list[str]] = {}
    for r in results:
        if r.info.get(BEHAVIOUR_KEY) is not None:
            by_seed.setdefault(r.seed, []).append(str(r.info[BEHAVIOUR_KEY]))
    seen = len({label for labels in by_seed.values() for label in labels})
    groups = [labels for labels in by_seed.values() if len(labels) > 1]
    if not groups:
        raise ValueError("conditional entropy needs at least two labelled rollouts from one start")
    return float(np.mean([
        behaviour_entropy(labels, num_labels=num_labels or max(2, min(len(labels), seen))) for labels in groups
    ]))


def format_summary(summary: EvalSummary) -> str:
    """One line (two with behaviour labels), e.g.
    `success 47/50 = 94.0% (95% CI 83.8-97.9%)  return 12.3±4.1  length 87`."""
    if summary.n == 0:
        return "no episodes"
    line = (
        f"success {summary.successes}/{summary.n} = {summary.success_rate:.1%} "
        f"(95% CI {100 * summary.ci_low:.1f}-{100 * summary.ci_high:.1f}%)  "
        f"return {summary.mean_return:.1f}±{summary.std_return:.1f}  length {summary.mean_length:.0f}"
    )
    if summary.mean_score is not None:
        line += f"  score {summary.mean_score:.3f}"
    if summary.route_shares is not None:
        shares = " / ".join(f"{name} {share:.0%}" for name, share in summary.route_shares.items())
        if len(summary.route_shares) > MAX_LISTED_BEHAVIOURS:
            shares = f"{len(summary.route_shares)} distinct"
        line += f"\nroutes  {shares}  (behaviour entropy {summary.behaviour_entropy:.2f})"
    return line
