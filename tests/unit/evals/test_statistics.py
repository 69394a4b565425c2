"""The comparison statistics against values computed independently here: every bootstrap
resample and every sign pattern of discordant pairs enumerated by brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fm_lab.evals.statistics import (
    bootstrap_ci,
    is_pass_fail,
    mcnemar_exact,
    paired_bootstrap,
)


def enumerated_means(values: list[float]) -> np.ndarray:
    """The mean of every ordered resample of ``values`` (n ** n of them)."""
    return np.array([sum(draw) / len(values)
                     for draw in itertools.product(values, repeat=len(values))])


def test_bootstrap_interval_on_small_data_is_the_enumerated_one() -> None:
    values = [0.1, 0.5, 0.9, 0.3, 0.8]
    means = enumerated_means(values)
    found = bootstrap_ci(values, confidence=0.9)
    assert found.mean == pytest.approx(np.mean(values))
    assert found.low == pytest.approx(np.quantile(means, 0.05))
    assert found.high == pytest.approx(np.quantile(means, 0.95))
    assert found.n == 5


def test_drawn_bootstrap_interval_is_close_to_the_enumerated_one() -> None:
    values = [0.0, 1.0, 0.25, 0.5, 0.75, 1.0]  # 6 ** 6 resamples: drawn, not enumerated
    means = enumerated_means(values)
    found = bootstrap_ci(values, n_resamples=20_000, seed=3)
    assert found.low == pytest.approx(np.quantile(means, 0.025), abs=0.02)
    assert found.high == pytest.approx(np.quantile(means, 0.975), abs=0.02)


def test_paired_bootstrap_p_value_is_the_enumerated_one() -> None:
    a = [0.2, 0.4, 0.1, 0.6, 0.5]
    b = [0.5, 0.4, 0.6, 0.7, 0.4]
    differences = [y - x for x, y in zip(a, b, strict=True)]
    observed = sum(differences) / len(differences)
    centred = enumerated_means(differences) - observed
    expected_p = float(np.mean(np.abs(centred) >= abs(observed) - 1e-12))
    found = paired_bootstrap(a, b)
    assert found.difference == pytest.approx(observed)
    assert found.p_value == pytest.approx(expected_p)
    assert 0 < found.p_value < 1
    assert found.low < observed < found.high


def test_paired_bootstrap_leaves_out_pairs_with_a_missing_side() -> None:
    found = paired_bootstrap([1.0, math.nan, 0.5], [1.0, 0.2, 0.5])
    assert found.n == 2 and found.difference == 0 and found.p_value == 1.0


def brute_mcnemar(lost: int, won: int) -> float:
    """Two-sided exact p: the share of the 2 ** (lost + won) equally likely splits of the
    discordant pairs at least as uneven as the one seen."""
    n = lost + won
    seen = abs(lost - won)
    extreme = sum(1 for signs in itertools.product((0, 1), repeat=n)
                  if abs(2 * sum(signs) - n) >= seen)
    return extreme / 2 ** n


@pytest.mark.parametrize(("lost", "won", "ties"), [(1, 6, 5), (3, 3, 2), (0, 9, 1), (4, 7, 0)])
def test_mcnemar_exact_is_the_enumerated_binomial(lost: int, won: int, ties: int) -> None:
    a = [1] * lost + [0] * won + [1] * ties
    b = [0] * lost + [1] * won + [1] * ties
    found = mcnemar_exact(a, b)
    assert found.p_value == pytest.approx(min(1.0, brute_mcnemar(lost, won)))
    assert found.difference == pytest.approx((won - lost) / (lost + won + ties))


def test_no_discordant_pairs_is_no_evidence() -> None:
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]).p_value == 1.0
    assert is_pass_fail([1.0, 0.0, math.nan]) and not is_pass_fail([0.5, 1.0])
