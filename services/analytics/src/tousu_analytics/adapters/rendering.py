"""The monthly report rendered as CSV, HTML (charts inline) and PDF (the same HTML).

Charts are drawn on the server with matplotlib (Agg) in a CJK font from the Debian package
``fonts-wqy-microhei``; the PDF is WeasyPrint's rendering of the HTML, so the two never
disagree.
"""

from __future__ import annotations

import base64
import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jinja2 import Environment, FileSystemLoader, select_autoescape  # noqa: E402
from matplotlib import dates as mdates  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from tousu_analytics.adapters.labels import LABELS, value_label  # noqa: E402

TEMPLATES = Path(__file__).resolve().parents[1] / "entrypoints" / "templates"
CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans CJK JP")
_environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())


def _font() -> list[str]:
    available = {font.name for font in font_manager.fontManager.ttflist}
    return [name for name in CJK_FONTS if name in available] + ["DejaVu Sans"]


def _png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=130, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _daily_chart(content: dict[str, Any], lang: str) -> str:
    labels = LABELS[lang]
    figure, axes = plt.subplots(figsize=(7.5, 2.6))
    days = [float(mdates.date2num(date.fromisoformat(row["cell"]))) for row in content["by_day"]]
    axes.bar(days, [row["volume"] for row in content["by_day"]], color="#3b6ea5", width=0.8)
    for mark in content["calendar"]:
        day = float(mdates.date2num(date.fromisoformat(mark["date"])))
        if mark["kind"] == "holiday":
            axes.axvspan(
                day - 0.5, day + 0.5, color="#f2b8b5", alpha=0.6, lw=0, label=labels["holiday"]
            )
        else:
            axes.axvline(day, color="#8a6d3b", ls="--", lw=1, label=labels["makeup"])
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    handles, names = axes.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=False))
    if unique:
        axes.legend(unique.values(), unique.keys(), fontsize=8, loc="upper right")
    axes.set_title(labels["daily_volume"])
    axes.tick_params(axis="x", labelsize=7, rotation=45)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def _bar_chart(rows: list[dict[str, Any]], title: str, lang: str) -> str:
    figure, axes = plt.subplots(figsize=(3.6, 2.6))
    ordered = sorted(rows, key=lambda row: row["volume"])
    axes.barh(
        [value_label(row["cell"], lang) for row in ordered],
        [row["volume"] for row in ordered],
        color="#5b9279",
    )
    axes.set_title(title)
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def charts(content: dict[str, Any], lang: str) -> dict[str, str]:
    """The report's charts as PNG data URIs."""
    plt.rcParams["font.sans-serif"] = _font()
    plt.rcParams["axes.unicode_minus"] = False
    labels = LABELS[lang]
    return {
        "daily": _daily_chart(content, lang),
        "category": _bar_chart(content["by_category"], labels["by_category"], lang),
        "channel": _bar_chart(content["by_channel"], labels["by_channel"], lang),
    }


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.{digits}f}"


def render_html(content: dict[str, Any], lang: str) -> str:
    template = _environment.get_template("monthly.html")
    return template.render(
        r=content,
        t=LABELS[lang],
        lang=lang,
        charts=charts(content, lang),
        v=lambda value: value_label(value, lang),
        pct=_percent,
        num=_number,
        rates={
            "complaint_rate_per_order",
            "resolution_rate",
            "fcr_rate",
            "reopen_rate",
            "repeat_rate",
        },
        # A change in these is good news when it goes up; in every other headline, down.
        higher_is_better={"resolution_rate", "fcr_rate"},
    )


def render_pdf(content: dict[str, Any], lang: str) -> bytes:
    from weasyprint import HTML

    pdf = HTML(string=render_html(content, lang)).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def render_csv(content: dict[str, Any], lang: str) -> str:
    """Every table of the report as rows of (section, key, column, value)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["section", "key", "column", "value"])
    for figures in content["headline"]:
        for column in ("value", "previous", "change"):
            writer.writerow(["headline", figures["metric"], column, figures[column]])
    for section in ("by_category", "by_channel", "by_day"):
        for row in content[section]:
            for column, value in row.items():
                if column != "cell":
                    writer.writerow([section, row["cell"], column, value])
    for milestone, row in content["sla_compliance"].items():
        writer.writerow(["sla_compliance", milestone, "rate", row["rate"]])
    for source, row in content["csat"].items():
        for column, value in row.items():
            writer.writerow(["csat", source, column, value])
    for row in content["top_root_causes"]:
        writer.writerow(["top_root_causes", row["root_cause"], "count", row["count"]])
    for section in ("alerts", "slowest_cases", "improvement_actions"):
        for index, row in enumerate(content[section]):
            for column, value in row.items():
                writer.writerow([section, index, column, value])
    return buffer.getvalue()
