"""The before/after effect of an improvement action as a rate ratio.

The same count model as the detector's baseline: a log-linear Poisson model of complaint
counts with the exposure (orders, or days when no denominators were supplied) as offset and
a quasi-Poisson scale for over-dispersion when there are more periods than parameters. The
ratio is exp(β_after) with a Wald interval on the log scale.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import stats


@dataclass(frozen=True)
class Period:
    """One period's complaints and exposure, before or after the action."""

    label: str
    count: int
    exposure: float
    after: bool


@dataclass(frozen=True)
class Effect:
    rate_before: float
    rate_after: float
    rate_ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    dispersion: float
    level: float

    def as_json(self) -> dict[str, float]:
        return {key: round(value, 6) for key, value in self.__dict__.items()}


def rate_ratio(periods: Sequence[Period], level: float = 0.95) -> Effect | None:
    """The after/before rate ratio; None without complaints on both sides (a side with
    none has no finite log ratio: its fit diverges)."""
    before = [p for p in periods if not p.after and p.exposure > 0]
    after = [p for p in periods if p.after and p.exposure > 0]
    if not sum(p.count for p in before) or not sum(p.count for p in after):
        return None
    used = [*before, *after]
    y = np.asarray([p.count for p in used], float)
    x = np.column_stack([np.ones(len(used)), [1.0 if p.after else 0.0 for p in used]])
    offset = np.log([p.exposure for p in used])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(y, x, family=sm.families.Poisson(), offset=offset).fit()
    dispersion = 1.0
    if fit.df_resid > 0:
        dispersion = max(1.0, float(fit.pearson_chi2 / fit.df_resid))
    beta = float(fit.params[1])
    se = float(fit.bse[1]) * math.sqrt(dispersion)
    z = float(stats.norm.ppf(0.5 + level / 2))
    rate_before = sum(p.count for p in before) / sum(p.exposure for p in before)
    rate_after = sum(p.count for p in after) / sum(p.exposure for p in after)
    return Effect(
        rate_before=rate_before,
        rate_after=rate_after,
        rate_ratio=math.exp(beta),
        ci_low=math.exp(beta - z * se),
        ci_high=math.exp(beta + z * se),
        p_value=float(2 * stats.norm.sf(abs(beta / se))) if se > 0 else 0.0,
        dispersion=dispersion,
        level=level,
    )
