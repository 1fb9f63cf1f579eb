"""The detector on synthetic series: a spike is found at once, noise stays quiet."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from tousu_analytics.domain.calendar import DayKind, day_kind
from tousu_analytics.domain.detection import (
    EARS_C2,
    FARRINGTON,
    alarms,
    ears_c2,
    scan,
    test_series,
)
from tousu_analytics.settings import AnalyticsSettings

START = date(2024, 9, 1)
MONTH_START, MONTH_END = date(2025, 10, 1), date(2025, 11, 1)  # National Day week + 调休
# The configured defaults are what is tested.
FDR = AnalyticsSettings.model_fields["detector_fdr"].default
ALPHA = AnalyticsSettings.model_fields["detector_alpha"].default
WEEKDAY_FACTOR = (1.0, 1.05, 1.0, 0.95, 0.9, 0.55, 0.45)


def expected_rate(day: date, base: float) -> float:
    """Weekly seasonality, quiet statutory holidays, 调休 Saturdays worked like a Monday."""
    kind = day_kind(day)
    if kind is DayKind.HOLIDAY:
        return base * 0.35
    if kind is DayKind.MAKEUP_WORKDAY:
        return base * WEEKDAY_FACTOR[0]
    return base * WEEKDAY_FACTOR[day.weekday()]


def noise(rng: np.random.Generator, base: float, end: date, size: float = 15.0) -> list[int]:
    days = (end - START).days
    means = [expected_rate(START + timedelta(days=i), base) for i in range(days)]
    return [int(rng.negative_binomial(size, size / (size + m))) for m in means]


def run_month(series: list[list[int]]) -> list[list[bool]]:
    """Alarms per series per day of the test month, as the daily detector raises them."""
    first = (MONTH_START - START).days
    scanned = [scan(s, START, first, alpha=ALPHA, history_days=364) for s in series]
    per_day = []
    for offset in range((MONTH_END - MONTH_START).days):
        findings = [found[offset] for found in scanned]
        assert all(finding is not None for finding in findings)
        per_day.append(alarms([f for f in findings if f is not None], fdr=FDR, min_count=5))
    return per_day


def test_noise_with_a_holiday_week_raises_at_most_one_alarm_per_100_series_months() -> None:
    rng = np.random.default_rng(20251001)
    bases = rng.uniform(2.0, 20.0, size=100)
    series = [noise(rng, base, MONTH_END) for base in bases]
    false_alarms = sum(sum(day) for day in run_month(series))
    assert false_alarms <= 1


@pytest.mark.parametrize("spike_day", [date(2025, 10, 14), date(2025, 10, 3)])
def test_a_spike_is_found_on_its_first_or_second_day(spike_day: date) -> None:
    rng = np.random.default_rng(7)
    series = [noise(rng, base, MONTH_END) for base in rng.uniform(3.0, 12.0, size=20)]
    spiked = series[4]
    start = (spike_day - START).days
    for i in range(start, start + 5):
        spiked[i] += 20  # a batch of faulty units: 20 extra complaints a day
    days = run_month(series)
    first = (spike_day - MONTH_START).days
    assert days[first][4] or days[first + 1][4]
    others = sum(alarm for day in days for s, alarm in enumerate(day) if s != 4)
    assert others <= 1


def test_the_finding_names_the_first_day_of_the_rise() -> None:
    rng = np.random.default_rng(11)
    counts = noise(rng, 6.0, date(2025, 10, 16))
    for i in range(3):
        counts[-1 - i] += 20
    finding = test_series(counts, START, alpha=ALPHA, history_days=364)
    assert finding is not None and finding.method == FARRINGTON
    assert finding.exceeds
    assert finding.first_day == date(2025, 10, 13)
    assert finding.p_value < 1e-4


def test_short_series_use_ears_c2() -> None:
    counts = [3, 4, 2, 5, 3, 4, 3, 4, 2, 3, 4, 3, 15]
    finding = test_series(counts, date(2025, 3, 3), alpha=ALPHA, history_days=364)
    assert finding is not None and finding.method == EARS_C2
    baseline = np.asarray(counts[-10:-3], float)
    assert finding.expected == pytest.approx(baseline.mean())
    assert finding.upper_bound == pytest.approx(baseline.mean() + 3 * baseline.std(ddof=1))
    assert finding.exceeds
    assert ears_c2(counts[:9], [date(2025, 3, 3)] * 9) is None


def test_benjamini_hochberg_and_the_minimum_count_gate_alarms() -> None:
    from tousu_analytics.domain.detection import Finding

    day = date(2025, 5, 6)

    def finding(observed: int, p: float) -> Finding:
        return Finding(day, FARRINGTON, observed, 1.0, 3.0, p, day)

    found = [finding(9, 1e-6), finding(4, 1e-6), finding(9, 0.004)] + [
        finding(1, 0.5) for _ in range(97)
    ]
    # 0.004 > 3/100 * 0.01 = 0.0003: not significant once 100 series are tested.
    assert alarms(found, fdr=FDR, min_count=5)[:3] == [True, False, False]
