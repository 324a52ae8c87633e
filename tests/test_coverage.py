"""The reported 95% interval of a gain keeps its coverage with few seeds, on simulated experiments of known truth.

Each experiment: a baseline and an arm, each trained with R seeds, scored on L languages x N items (0/1 correctness).
A run answers item i of language l correctly when mu_arm + theta + eta + u + w + e > 0: theta the item's
difficulty and eta its arm-specific part (both correlated across languages with rho for a parallel test set, 0
otherwise), u the run's seed effect, w its seed-by-language effect and e standard normal noise. All are normal, so
the true gain, the expected accuracy difference over seeds and items, is 100 (Phi(mu_arm / s) - Phi(mu_base / s))
with s the total standard deviation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from xstilts.analysis.stats import Replicates, Run, compare

SD = {"theta": 0.8, "eta": 0.35, "u": 0.15, "w": 0.04}
MU = {"base": 0.45, "arm": 0.55}
LANGUAGES, ITEMS, RESAMPLES, EXPERIMENTS = 6, 150, 300, 1000


def true_gain() -> float:
    s = math.sqrt(1 + sum(v**2 for v in SD.values()))
    return 100 * (sps.norm.cdf(MU["arm"] / s) - sps.norm.cdf(MU["base"] / s))


def _correlated(rng: np.random.Generator, rho: float) -> np.ndarray:
    """(languages, items) standard normals with correlation rho between the languages of one item."""
    shared = rng.normal(size=ITEMS)
    return math.sqrt(rho) * shared + math.sqrt(1 - rho) * rng.normal(size=(LANGUAGES, ITEMS))


def experiment(rng: np.random.Generator, seeds: int, rho: float) -> dict[str, Run]:
    theta = SD["theta"] * _correlated(rng, rho)
    keys = {f"l{j}": np.array([f"{'' if rho else j}-{i}" for i in range(ITEMS)]) for j in range(LANGUAGES)}
    runs = {}
    for arm, mu in MU.items():
        eta = SD["eta"] * _correlated(rng, rho)
        for seed in range(seeds):
            shift = SD["u"] * rng.normal() + SD["w"] * rng.normal(size=(LANGUAGES, 1))
            correct = (mu + theta + eta + shift + rng.normal(size=(LANGUAGES, ITEMS)) > 0).astype(np.float64)
            runs[f"{arm}-{seed}"] = Run({f"l{j}": correct[j, :, None] for j in range(LANGUAGES)}, keys, seed)
    return runs


def coverage(seeds: int, rho: float) -> float:
    rng = np.random.default_rng([seeds, int(rho * 10)])
    truth, hits = true_gain(), 0
    for k in range(EXPERIMENTS):
        reps = Replicates(experiment(rng, seeds, rho), parallel=rho > 0, resamples=RESAMPLES, seed=k)
        avg = compare(reps, [f"arm-{s}" for s in range(seeds)], [f"base-{s}" for s in range(seeds)])["avg"]
        hits += avg.low <= truth <= avg.high
    return hits / EXPERIMENTS


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize("rho", [0.3, 0.0], ids=["parallel", "independent"])
def test_the_average_gain_interval_covers_the_truth(seeds, rho):
    assert 0.93 <= coverage(seeds, rho) <= 0.97
