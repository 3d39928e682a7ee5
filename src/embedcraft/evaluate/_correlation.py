"""Spearman and Pearson correlation for the pair benchmarks (word pairs, STS), with clear errors
where a correlation cannot be measured instead of scipy's ValueError or warning blocks."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

from ..errors import InputError

__all__ = ["correlations"]


def correlations(
    gold: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray, source: str
) -> tuple[float, float]:
    """(Spearman, Pearson) of `predicted` scores against the `gold` scores of pairs from `source`.

    Fewer than two pairs, or gold scores that are not finite or all equal, are an `InputError`:
    the file cannot measure anything. Predictions that are all equal (an encoder that gives every
    pair the same score) have no correlation: NaN, without scipy's warning.
    """
    truth = np.asarray(gold, dtype=np.float64)
    model = np.asarray(predicted, dtype=np.float64)
    n = len(truth)
    if n < 2:
        raise InputError(
            f"{source}: {n} usable pair{'' if n == 1 else 's'}; a correlation needs at least 2"
        )
    if not np.isfinite(truth).all():
        raise InputError(f"{source}: the gold scores must be finite numbers (found NaN or inf)")
    if truth.min() == truth.max():
        raise InputError(
            f"{source}: every gold score is {truth[0]:g}; a correlation needs scores that differ"
        )
    if not np.isfinite(model).all() or model.min() == model.max():
        return math.nan, math.nan
    with warnings.catch_warnings():  # nearly equal predictions: scipy computes, and warns
        warnings.simplefilter("ignore", stats.NearConstantInputWarning)
        spearman = float(stats.spearmanr(truth, model).statistic)
        pearson = float(stats.pearsonr(truth, model).statistic)
    return spearman, pearson
