"""The statistics of comparisons, in plain numpy: a bootstrap interval of a mean, the paired
bootstrap of a difference (interval and two-sided p-value) and McNemar's exact test for
pass/fail scores. Small samples are enumerated exactly (every resample), larger ones drawn.

>>> round(mcnemar_exact([1, 1, 1, 0], [0, 0, 0, 0]).p_value, 3)
0.25
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

EXACT_LIMIT = 20_000  # enumerate every resample when n ** n is at most this (n <= 5)


@dataclass(frozen=True)
class Interval:
    """A mean with its ``confidence`` interval."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class PairedDifference:
    """``b - a`` on paired rows: mean difference, its interval and a two-sided p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    n: int
    test: str


def _values(values: Any) -> Floats:
    import numpy as np

    array = np.asarray(values, dtype=np.float64).ravel()
    return array[~np.isnan(array)]


def resample_means(values: Floats, n_resamples: int, seed: int | None) -> Floats:
    """Means of bootstrap resamples of ``values``: all ``n ** n`` of them (ordered draws,
    each equally likely) when that is at most :data:`EXACT_LIMIT`, else ``n_resamples``
    random ones."""
    import numpy as np

    n = len(values)
    if n ** n <= EXACT_LIMIT:
        index = np.indices((n,) * n).reshape(n, -1).T  # every ordered draw of n from n
        means: Floats = values[index].mean(axis=1)
        return means
    rng = np.random.default_rng(seed)
    drawn: Floats = values[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    return drawn


def bootstrap_ci(values: Any, *, confidence: float = 0.95, n_resamples: int = 4000,
                 seed: int | None = 0) -> Interval:
    """The mean of ``values`` (NaN left out) with a percentile bootstrap interval."""
    import numpy as np

    data = _values(values)
    if len(data) == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    means = resample_means(data, n_resamples, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(data.mean()), float(low), float(high), len(data))


def paired_bootstrap(a: Any, b: Any, *, confidence: float = 0.95, n_resamples: int = 4000,
                     seed: int | None = 0) -> PairedDifference:
    """The mean of ``b - a`` over pairs where both are scored, a percentile bootstrap
    interval of it, and the two-sided p-value of "no difference": the share of resampled
    differences, centred on zero, at least as far from zero as the one observed."""
    import numpy as np

    left, right = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if left.shape != right.shape:
        raise ValueError(f"paired samples differ in length: {left.shape} and {right.shape}")
    keep = ~(np.isnan(left) | np.isnan(right))
    differences = right[keep] - left[keep]
    n = len(differences)
    if n == 0:
        return PairedDifference(math.nan, math.nan, math.nan, math.nan, 0, "paired bootstrap")
    observed = float(differences.mean())
    means = resample_means(differences, n_resamples, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    if np.all(differences == differences[0]):
        p_value = 1.0 if observed == 0 else 0.0
    else:
        centred = means - observed
        p_value = float(np.mean(np.abs(centred) >= abs(observed) - 1e-12))
    return PairedDifference(observed, float(low), float(high), p_value, n, "paired bootstrap")


def mcnemar_exact(a: Any, b: Any) -> PairedDifference:
    """McNemar's exact test on paired pass/fail results (true/1 = pass): the two-sided
    binomial p-value of the discordant pairs, with the difference in pass rate ``b - a``
    and its Wald interval over pairs."""
    import numpy as np

    left, right = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = ~(np.isnan(left) | np.isnan(right))
    passed_a, passed_b = left[keep] > 0.5, right[keep] > 0.5
    n = len(passed_a)
    if n == 0:
        return PairedDifference(math.nan, math.nan, math.nan, math.nan, 0, "McNemar exact")
    lost = int(np.sum(passed_a & ~passed_b))  # passed in a, failed in b
    won = int(np.sum(~passed_a & passed_b))
    discordant = lost + won
    tail = sum(math.comb(discordant, k) for k in range(min(lost, won) + 1))
    p_value = min(1.0, 2 * tail / 2 ** discordant) if discordant else 1.0
    difference = (won - lost) / n
    spread = math.sqrt(max(discordant / n - difference ** 2, 0.0) / n)
    return PairedDifference(difference, difference - 1.96 * spread, difference + 1.96 * spread,
                            p_value, n, "McNemar exact")


def is_pass_fail(values: Any) -> bool:
    """Whether every scored value is 0 or 1."""
    import numpy as np

    data = _values(values)
    return len(data) > 0 and bool(np.all((data == 0) | (data == 1)))
