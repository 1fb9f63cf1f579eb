"""Systemic-issue detection on daily complaint counts (pure: numbers in, findings out).

Method (stated in the README too):

- **Baseline**: the improved Farrington algorithm of Noufaily et al. (Statistics in
  Medicine 2013) adapted to daily counts. A log-linear count model is fitted to the series'
  past (up to ``history_days``, leaving out a ``guard`` week before the day under test so a
  rise in progress does not raise its own baseline) with a day-of-week factor, a linear
  trend, and terms for Chinese statutory holidays and 调休 working days. The fit is
  refreshed weekly, so each day's baseline ends one to two weeks before it. As in Noufaily
  et al., past days with Anscombe residuals above 2.58 are down-weighted (w = r⁻²) and the
  model refitted, and the trend is kept only when significant at 5%. Over-dispersion is the
  negative-binomial α of Var(Y) = μ + αμ², estimated by moments from the fitted means;
  the prediction adds the variance of the estimated log mean to α (as Farrington et al.
  include the estimate's uncertainty in the bound). The day-of-week factor uses the day's
  *effective* weekday: a holiday counts as a Sunday and a 调休 day as a Monday, so a series
  whose history holds no holiday yet still expects a quiet National Day and a busy make-up
  Saturday.
- **Alarm bound**: the upper ``1 - alpha`` (99%) quantile of the negative binomial with the
  predicted mean μ and dispersion α (Poisson when α = 0); the p-value is P(Y ≥ observed).
- **Short series** (under four weeks of history): EARS C2, the mean and standard deviation
  of days d-9 … d-3, alarm above mean + 3 sd.
- **Many series**: Benjamini–Hochberg across every series tested on the same day, and a
  minimum count, decide which exceedances become alarms.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from tousu_analytics.domain.calendar import DayKind, day_kind

FARRINGTON = "farrington_nb"
EARS_C2 = "ears_c2"
MIN_FARRINGTON_HISTORY = 28
GUARD_DAYS = 7
EARS_BASELINE = 7
EARS_GUARD = 2
RESIDUAL_CUTOFF = 2.58
RISE_QUANTILE = 0.95


@dataclass(frozen=True)
class Finding:
    """The test of one series on one day."""

    day: date
    method: str
    observed: int
    expected: float
    upper_bound: float
    p_value: float
    first_day: date  # first day of the run of raised days ending on ``day``

    @property
    def exceeds(self) -> bool:
        return self.observed > self.upper_bound


def _effective_weekday(day: date, kind: DayKind) -> int:
    if kind is DayKind.HOLIDAY:
        return 6
    if kind is DayKind.MAKEUP_WORKDAY:
        return 0
    return day.weekday()


def _design(days: Sequence[date], origin: date) -> np.ndarray:
    """Intercept, trend (years), six weekday dummies, holiday and 调休 indicators."""
    rows = []
    for day in days:
        kind = day_kind(day)
        weekday = _effective_weekday(day, kind)
        rows.append(
            [
                1.0,
                (day - origin).days / 365.0,
                *(1.0 if weekday == k else 0.0 for k in range(1, 7)),
                1.0 if kind is DayKind.HOLIDAY else 0.0,
                1.0 if kind is DayKind.MAKEUP_WORKDAY else 0.0,
            ]
        )
    return np.asarray(rows)


def _anscombe(y: np.ndarray, mu: np.ndarray, phi: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 1.5 * (np.cbrt(y) ** 2 - np.cbrt(mu) ** 2) / (np.cbrt(mu) ** 0.5 * math.sqrt(phi))
    return np.nan_to_num(r)


def _fit(
    y: np.ndarray, x: np.ndarray, weights: np.ndarray | None = None, start: np.ndarray | None = None
) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", (ConvergenceWarning, PerfectSeparationWarning, RuntimeWarning)
        )
        model = sm.GLM(y, x, family=sm.families.Poisson(), var_weights=weights)
        return model.fit(start_params=start)


def _trend_p_value(result: Any, index: int) -> float:
    """The trend's two-sided p-value with the standard error scaled for over-dispersion."""
    se = float(result.bse[index]) * math.sqrt(_dispersion(result))
    return float(2 * stats.norm.sf(abs(float(result.params[index]) / se))) if se > 0 else 0.0


def _dispersion(result: Any) -> float:
    """The quasi-Poisson scale (Pearson χ² per residual degree of freedom), at least 1."""
    if result.df_resid <= 0:
        return 1.0
    return max(1.0, float(result.pearson_chi2 / result.df_resid))


def _nb_quantile(q: float, mu: float, alpha: float) -> float:
    if mu <= 0:
        return 0.0
    if alpha <= 1e-9:
        return float(stats.poisson.ppf(q, mu))
    size = 1.0 / alpha
    return float(stats.nbinom.ppf(q, size, size / (size + mu)))


def _nb_sf(observed: int, mu: float, alpha: float) -> float:
    """P(Y ≥ observed)."""
    if observed <= 0:
        return 1.0
    mu = max(mu, 1e-6)
    if alpha <= 1e-9:
        return float(stats.poisson.sf(observed - 1, mu))
    size = 1.0 / alpha
    return float(stats.nbinom.sf(observed - 1, size, size / (size + mu)))


@dataclass(frozen=True)
class Baseline:
    """A fitted baseline: the model's predicted mean for days after its window, and φ."""

    params: np.ndarray
    used: np.ndarray
    covariance: np.ndarray  # of params: the uncertainty of the predicted mean
    alpha: float  # negative-binomial dispersion: Var = μ + αμ²
    origin: date
    fit_end: int  # index of the first day after the fitted window

    def predict(self, days: Sequence[date]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted means and the dispersion of a *prediction* on each day: the NB α plus
        the variance of the log mean's estimate (a lognormal mixture adds it to α)."""
        x = _design(days, self.origin)[:, self.used]
        eta = np.clip(x @ self.params, -30, 30)
        estimate_variance = np.einsum("ij,jk,ik->i", x, self.covariance, x)
        return np.exp(eta), self.alpha + np.maximum(estimate_variance, 0.0)


def fit_baseline(
    counts: Sequence[int], days: Sequence[date], fit_end: int, history_days: int
) -> Baseline:
    """Fit the count model to the days before ``fit_end`` (at most ``history_days``)."""
    fit_start = max(0, fit_end - history_days)
    y = np.asarray(counts[fit_start:fit_end], dtype=float)
    origin = days[fit_start]
    x = _design(days[fit_start:fit_end], origin)
    if y.sum() == 0:
        # Nothing ever happened: a small mean so one complaint is unusual but not absurd.
        return Baseline(
            np.asarray([math.log(0.5 / len(y))]),
            np.asarray([0]),
            np.zeros((1, 1)),
            0.0,
            origin,
            fit_end,
        )
    used = np.flatnonzero(x.any(axis=0))  # drop terms the window cannot estimate
    result = _fit(y, x[:, used])
    residuals = _anscombe(y, result.mu, _dispersion(result))
    # residuals^-2 only where it applies (np.where would compute it for zeros as well)
    outlying = residuals > RESIDUAL_CUTOFF
    weights = np.divide(1.0, residuals**2, out=np.ones_like(residuals), where=outlying)
    weights *= len(y) / weights.sum()
    result = _fit(y, x[:, used], weights, result.params)
    if 1 in used and _trend_p_value(result, int(np.flatnonzero(used == 1)[0])) >= 0.05:
        keep = used != 1  # no significant trend: leave it out
        used = used[keep]
        result = _fit(y, x[:, used], weights, result.params[keep])
    return Baseline(
        result.params,
        used,
        np.asarray(result.cov_params()),
        _nb_alpha(y, result.mu),
        origin,
        fit_end,
    )


def _nb_alpha(y: np.ndarray, mu: np.ndarray) -> float:
    """Moment estimate of the negative-binomial dispersion α from Var(Y) = μ + αμ²
    (Cameron and Trivedi's auxiliary regression through the origin), never below 0.

    Unweighted: the down-weighting keeps past outbreaks out of the *mean*, but the spread
    must keep the ordinary tail, or noise alone would cross the bound too often."""
    excess = (y - mu) ** 2 - y
    return max(0.0, float(excess.sum() / (mu**2).sum()))


def _anchor(days: Sequence[date], index: int) -> int:
    """Where the baseline for the day at ``index`` ends: a guard week before its week began.

    The baseline is refitted once a week (Monday), not per day: every day of a week shares
    one fit that ends at least ``GUARD_DAYS`` before it.
    """
    return index - days[index].weekday() - GUARD_DAYS


def farrington(
    counts: Sequence[int], days: Sequence[date], index: int, baseline: Baseline, alpha: float
) -> Finding:
    """Test the day at ``index`` against a baseline fitted before it."""
    observed = int(counts[index])
    recent = list(days[baseline.fit_end : index + 1])
    mu_recent, dispersion = baseline.predict(recent)
    mu, phi = float(mu_recent[-1]), float(dispersion[-1])
    raised = [
        counts[baseline.fit_end + i] > _nb_quantile(RISE_QUANTILE, float(m), float(a))
        for i, (m, a) in enumerate(zip(mu_recent, dispersion, strict=True))
    ]
    return Finding(
        day=days[index],
        method=FARRINGTON,
        observed=observed,
        expected=mu,
        upper_bound=_nb_quantile(1 - alpha, mu, phi),
        p_value=_nb_sf(observed, mu, phi),
        first_day=_first_raised(recent, raised),
    )


def _first_raised(days: Sequence[date], raised: Sequence[bool]) -> date:
    first = len(days) - 1
    while first > 0 and raised[first - 1]:
        first -= 1
    return days[first]


def ears_c2(counts: Sequence[int], days: Sequence[date]) -> Finding | None:
    """EARS C2 on the last day; None while there are not yet enough baseline days."""
    if len(counts) < EARS_BASELINE + EARS_GUARD + 1:
        return None
    observed = int(counts[-1])
    baseline = np.asarray(counts[-1 - EARS_GUARD - EARS_BASELINE : -1 - EARS_GUARD], float)
    mean = float(baseline.mean())
    sd = max(float(baseline.std(ddof=1)), 0.5)  # a flat baseline still has some spread
    upper = mean + 3 * sd
    # The day before also counts as the start of the rise when it was above the bound.
    before = int(counts[-2])
    first = days[-2] if before > upper else days[-1]
    return Finding(
        day=days[-1],
        method=EARS_C2,
        observed=observed,
        expected=mean,
        upper_bound=upper,
        p_value=float(stats.norm.sf((observed - mean) / sd)),
        first_day=first,
    )


def scan(
    counts: Sequence[int], start: date, first: int, *, alpha: float, history_days: int
) -> list[Finding | None]:
    """Test every day from index ``first`` to the last of a daily series starting on
    ``start`` (None for a day with too little history to test)."""
    days = [start + timedelta(days=i) for i in range(len(counts))]
    baselines: dict[int, Baseline] = {}
    findings: list[Finding | None] = []
    for index in range(first, len(counts)):
        fit_end = _anchor(days, index)
        if fit_end >= MIN_FARRINGTON_HISTORY:
            if fit_end not in baselines:
                baselines[fit_end] = fit_baseline(counts, days, fit_end, history_days)
            findings.append(farrington(counts, days, index, baselines[fit_end], alpha))
        else:
            findings.append(ears_c2(counts[: index + 1], days[: index + 1]))
    return findings


def test_series(
    counts: Sequence[int], start: date, *, alpha: float, history_days: int
) -> Finding | None:
    """Test the last day of a series of daily counts starting on ``start``."""
    return scan(counts, start, len(counts) - 1, alpha=alpha, history_days=history_days)[0]


test_series.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def alarms(findings: Sequence[Finding], *, fdr: float, min_count: int) -> list[bool]:
    """Which findings of one day become alarms: over the bound, at least ``min_count``
    complaints, and significant after Benjamini–Hochberg across all series tested."""
    if not findings:
        return []
    p_values = np.asarray([finding.p_value for finding in findings])
    significant, *_ = multipletests(p_values, alpha=fdr, method="fdr_bh")
    return [
        bool(keep) and finding.exceeds and finding.observed >= min_count
        for keep, finding in zip(significant, findings, strict=True)
    ]
