"""The plan report: one plan version as a self-contained HTML page plus its PNG charts.

This module draws and writes only; it reads no store and knows no Dagster. It takes
:class:`ReportFrames` (plain frames of what the page shows, gathered from the store by
:mod:`plan_pipeline.exports.plan_review`) and writes, into one folder:

* ``family_month.png``, ``weekly_load.png``, ``inventory_top_skus.png`` and, when the version
  differs from its baseline, ``baseline_diff.png`` (matplotlib, Agg canvas: no display, no pyplot
  state);
* ``report.html``, which opens with no network: inline CSS, every chart embedded as a base64
  ``data:image/png`` URI (the PNG files beside it are the same images, for slides and mails).

Every text that reaches the page is escaped (:func:`html.escape`). matplotlib is imported when a
chart is drawn, never at import time (the CLI starts without it).
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plan_pipeline.planning.vocabulary import SCORECARD_KPIS

REPORT_FILE = "report.html"
FAMILY_MONTH_CHART = "family_month.png"
WEEKLY_LOAD_CHART = "weekly_load.png"
INVENTORY_CHART = "inventory_top_skus.png"
DIFF_CHART = "baseline_diff.png"
ALL_CHARTS = (FAMILY_MONTH_CHART, WEEKLY_LOAD_CHART, INVENTORY_CHART, DIFF_CHART)

#: Columns of each frame the report takes.
FAMILY_MONTH_COLUMNS = ("family", "period", "demand", "supply", "backlog")
WEEKLY_COLUMNS = ("week", "capacity", "original_load", "adjusted_load", "spill_in", "spill_out", "zone")
INVENTORY_COLUMNS = ("sku", "week", "on_hand")
TOP_SKU_COLUMNS = ("sku", "demand")
KPI_COLUMNS = ("category", "metric", "bucket_type", "bucket_key", "value", "unit")
#: The version comparison frame (``store.compare_versions``): one row per changed bucket and metric.
COMPARISON_COLUMNS = ("bucket", "metric", "baseline", "value", "delta")

#: How many SKUs the inventory chart follows, families the chart draws, and diff rows the page lists.
TOP_SKUS = 10
MAX_FAMILY_PANELS = 12
MAX_DIFF_ROWS = 25
MAX_DIFF_BARS = 15
#: Utilization above this is "over 100 %" (the leveled load is rounded; equality is not over).
OVER_CAPACITY_EPS = 1e-9
DPI = 110


@dataclass(frozen=True)
class ReportHeader:
    """Who the report is about: the version row and the published plan it shows."""

    version_id: str
    status: str
    input_set: str | None
    parameters: dict[str, Any]
    created_at: str
    planned_at: str | None
    run_ids: tuple[str, ...]
    note: str | None = None
    #: which plan the charts read: "plain" or "anchored" (the anchored branch, where the version has one)
    branch: str = "plain"


@dataclass(frozen=True)
class ReportComparison:
    """The version against its baseline: ``frame`` has :data:`COMPARISON_COLUMNS` (None or
    ``baseline`` None: nothing to compare with, ``note`` says why)."""

    baseline: str | None
    frame: pd.DataFrame | None = None
    by: str = "family"
    note: str | None = None


@dataclass(frozen=True)
class ReportFrames:
    """Everything the page shows, as plain frames (see the ``*_COLUMNS`` constants)."""

    header: ReportHeader
    family_month: pd.DataFrame
    weekly: pd.DataFrame
    inventory: pd.DataFrame
    top_skus: pd.DataFrame
    #: scorecard KPI rows (``KPI_COLUMNS``); None when the version has no scorecard level
    scorecard: pd.DataFrame | None
    reference_kpis: pd.DataFrame
    comparison: ReportComparison = field(default_factory=lambda: ReportComparison(None, note="no baseline"))
    reference_level: str = "report"


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    charts: tuple[Path, ...]

    def paths(self) -> list[Path]:
        return [self.html, *self.charts]


# ------------------------------------------------------------------------------------ numbers
def over_capacity_weeks(weekly: pd.DataFrame) -> pd.DataFrame:
    """The weeks whose leveled load exceeds capacity: week, zone, capacity, load, utilization,
    over (load - capacity), spill in and out, in week order."""
    cap = weekly["capacity"].to_numpy(float)
    load = weekly["adjusted_load"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(cap > 0, load / np.where(cap > 0, cap, 1.0), np.where(load > 0, np.inf, 0.0))
    over = (util > 1.0 + OVER_CAPACITY_EPS) & (load - cap > OVER_CAPACITY_EPS)
    zone = weekly["zone"] if "zone" in weekly.columns else pd.Series([None] * len(weekly), index=weekly.index)
    return pd.DataFrame({
        "week": weekly["week"].astype(str).to_numpy(),
        "zone": zone.astype(object).where(zone.notna(), None).to_numpy(),
        "capacity": cap, "load": load, "utilization": util, "over": load - cap,
        "spill_in": weekly["spill_in"].to_numpy(float), "spill_out": weekly["spill_out"].to_numpy(float),
    })[over].reset_index(drop=True)


def over_capacity_text(weekly: pd.DataFrame) -> list[str]:
    """The over-100 % weeks in words: a summary line, then one line per week."""
    weeks = over_capacity_weeks(weekly)
    if weekly.empty:
        return ["The plan has no weekly capacity rows."]
    if weeks.empty:
        peak = weekly["adjusted_load"].to_numpy(float) / np.maximum(weekly["capacity"].to_numpy(float), 1e-12)
        return [f"No week is over 100 % of capacity (highest: {_pct(float(peak.max()))} in "
                f"{weekly['week'].iloc[int(peak.argmax())]})."]
    lines = [f"{len(weeks)} of {len(weekly)} weeks are over 100 % of capacity; together "
             f"{_units(float(weeks['over'].sum()))} units above capacity. Spill in is load moved into the week "
             "from earlier weeks; spill out is load the week could not take, carried to later weeks."]
    for row in weeks.itertuples(index=False):
        zone = f" (zone {row.zone})" if row.zone else ""
        util = "no capacity" if math.isinf(row.utilization) else _pct(row.utilization)
        lines.append(f"{row.week}{zone}: leveled load {_units(row.load)} vs capacity {_units(row.capacity)} = "
                     f"{util}, {_units(row.over)} over; spill in {_units(row.spill_in)}, "
                     f"spill out {_units(row.spill_out)}.")
    return lines


def _units(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.0f}" if abs(value - round(value)) < 0.05 or abs(value) >= 1000 else f"{value:,.1f}"


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100.0 * value:,.1f} %"


def format_value(value: Any, unit: str | None) -> str:
    """A KPI value for people: ratios in percent, days and turns with two decimals, units whole."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if unit == "ratio":
        return _pct(value)
    if unit in ("days", "turns/year"):
        return f"{value:,.2f}"
    return _units(value)


# ------------------------------------------------------------------------------------ charts
# Drawing cost (issue 13, docs/performance.md "Orchestration overhead per run"): the figures are
# placed by fixed margins in inches (:func:`_place`) instead of matplotlib's constrained layout,
# which measured every text of the figure several times and took about half of the drawing time;
# titles sit at a fixed height (no per-draw search for overlapping tick labels). What each chart
# shows is unchanged.
#: Width of a digit or sign of matplotlib's default font (DejaVu Sans), in em.
_DIGIT_EM = 0.64


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _ytick_inches(ax, fontsize: float) -> float:
    """Width of the widest y tick label of ``ax`` in inches, estimated from its characters (the
    labels are numbers; measuring the rendered text is what made constrained layout slow)."""
    labels = [label.get_text() for label in ax.get_yticklabels()]
    return max((len(text) for text in labels), default=1) * _DIGIT_EM * fontsize / 72.0


def _place(fig, *, left: float, right: float, top: float, bottom: float, rows: int = 1, cols: int = 1,
           hgap: float = 0.0, wgap: float = 0.0) -> None:
    """Fixed margins and gaps between panels, in inches."""
    width, height = fig.get_size_inches()
    axes_w = max((width - left - right - wgap * (cols - 1)) / cols, 0.1)
    axes_h = max((height - top - bottom - hgap * (rows - 1)) / rows, 0.1)
    fig.subplots_adjust(left=left / width, right=1.0 - right / width, bottom=bottom / height,
                        top=1.0 - top / height, wspace=wgap / axes_w, hspace=hgap / axes_h)


def _title(ax, text: str, fontsize: float) -> None:
    # y given: matplotlib keeps the title there instead of searching for tick labels it overlaps
    ax.set_title(text, fontsize=fontsize, y=1.0, pad=6.0)


def _bars(ax, x: np.ndarray, heights: Any, *, width: float, color: Any, label: str) -> None:
    """Vertical bars from 0 as one artist (``ax.bar`` makes a patch per bar, each placed, scaled
    and drawn on its own): the same rectangles, colours, legend entry and y axis starting at 0."""
    from matplotlib.collections import PolyCollection

    top = np.asarray(heights, dtype=float)
    left, right = np.asarray(x, dtype=float) - width / 2, np.asarray(x, dtype=float) + width / 2
    zero = np.zeros_like(top)
    verts = np.stack([np.column_stack([left, zero]), np.column_stack([left, top]),
                      np.column_stack([right, top]), np.column_stack([right, zero])], axis=1)
    bars = PolyCollection(list(verts), facecolors=color, edgecolors="none", linewidths=0.0, label=label)
    bars.sticky_edges.y.append(0.0)  # like ax.bar: no margin below the bars' base
    ax.add_collection(bars, autolim=True)
    ax.autoscale_view()


def _legend(ax, **kwargs):
    """The legend in the order ``ax.bar`` gave it: lines first, then the bars."""
    from matplotlib.collections import PolyCollection

    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(handles)), key=lambda i: isinstance(handles[i], PolyCollection))
    return ax.legend([handles[i] for i in order], [labels[i] for i in order], **kwargs)


def _week_ticks(ax, weeks: Sequence[str]) -> None:
    step = max(1, math.ceil(len(weeks) / 18))
    positions = list(range(0, len(weeks), step))
    ax.set_xticks(positions, [weeks[i] for i in positions], rotation=60, ha="right", fontsize=7)


def _rotated_label_inches(labels: Iterable[str], fontsize: float) -> float:
    """Height below the axis of x tick labels rotated by 60 degrees."""
    longest = max((len(text) for text in labels), default=1)
    return longest * _DIGIT_EM * fontsize / 72.0 * math.sin(math.radians(60)) + 0.25


def family_month_chart(frame: pd.DataFrame) -> bytes:
    """Demand and supply bars with the backlog line, one panel per family (the largest by demand)."""
    order = frame.groupby("family", sort=True)["demand"].sum().sort_values(ascending=False, kind="stable")
    families = list(order.index[:MAX_FAMILY_PANELS]) or ["(no rows)"]
    cols = min(3, len(families))
    rows = math.ceil(len(families) / cols)
    fig = _figure(4.4 * cols + 0.6, 2.8 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=False)
    periods = sorted(frame["period"].astype(str).unique())
    x = np.arange(len(periods))
    ticks = [p[-5:] for p in periods]
    below = _rotated_label_inches(ticks, 7)
    for index, ax in enumerate(axes.flat):
        if index >= len(families):
            ax.set_visible(False)
            continue
        family = families[index]
        rows_f = frame[frame["family"] == family].groupby("period")[["demand", "supply", "backlog"]].sum()
        rows_f = rows_f.reindex(periods, fill_value=0.0)
        _bars(ax, x - 0.2, rows_f["demand"], width=0.4, color="#9ecae1", label="demand")
        _bars(ax, x + 0.2, rows_f["supply"], width=0.4, color="#3182bd", label="supply")
        ax.plot(x, rows_f["backlog"], color="#d62728", marker="o", markersize=3, linewidth=1.5, label="backlog")
        _title(ax, str(family), 10)
        ax.set_xticks(x, ticks, rotation=60, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        if index == 0:
            _legend(ax, fontsize=7, loc="upper left")
    ytick = max(_ytick_inches(ax, 7) for ax in axes.flat[:len(families)])
    _place(fig, left=ytick + 0.2, right=0.15, top=0.65, bottom=below + 0.05, rows=rows, cols=cols,
           hgap=below + 0.35, wgap=ytick + 0.3)
    fig.suptitle("Demand, supply and backlog per family and month (units)", fontsize=11, y=1.0 - 0.12 / fig.get_figheight(),
                 va="top")
    return _png(fig)


def weekly_load_chart(weekly: pd.DataFrame) -> bytes:
    """Leveled load against capacity (over-capacity weeks in red, original load dotted, cutover
    zones shaded) above the weekly spill in and out."""
    fig = _figure(12.5, 6.2)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.4])
    weeks = weekly["week"].astype(str).tolist()
    x = np.arange(len(weeks))
    cap = weekly["capacity"].to_numpy(float)
    load = weekly["adjusted_load"].to_numpy(float)
    over = (load - cap > OVER_CAPACITY_EPS)
    _bars(top, x, load, color=np.where(over, "#d62728", "#3182bd"), width=0.8, label="leveled load")
    top.step(x, cap, where="mid", color="black", linewidth=1.4, label="capacity")
    top.plot(x, weekly["original_load"].to_numpy(float), linestyle=":", color="#636363", linewidth=1.2,
             label="original (unleveled) load")
    if "zone" in weekly.columns and weekly["zone"].notna().any():
        zones = weekly["zone"].astype(object).where(weekly["zone"].notna(), "")
        shades = {"pre": "#f0f0f0", "at": "#fff3c4", "post": "#e5f5e0"}
        start = 0
        for i in range(1, len(weeks) + 1):
            if i == len(weeks) or zones.iloc[i] != zones.iloc[start]:
                name = str(zones.iloc[start])
                if name:
                    top.axvspan(start - 0.5, i - 0.5, color=shades.get(name, "#eeeeee"), zorder=0)
                    top.text((start + i - 1) / 2, 0.97, f"zone {name}", transform=top.get_xaxis_transform(),
                             ha="center", va="top", fontsize=8, color="#555555")
                start = i
    top.set_ylabel("units", fontsize=8)
    top.grid(axis="y", alpha=0.3)
    _legend(top, fontsize=8, loc="upper left", ncols=3, bbox_to_anchor=(0.0, 0.92))
    _title(top, f"Weekly leveled load vs capacity ({int(over.sum())} week(s) over 100 %, in red)", 11)
    _bars(bottom, x - 0.2, weekly["spill_in"].to_numpy(float), width=0.4, color="#fd8d3c", label="spill in")
    _bars(bottom, x + 0.2, weekly["spill_out"].to_numpy(float), width=0.4, color="#756bb1", label="spill out")
    bottom.set_ylabel("units", fontsize=8)
    bottom.grid(axis="y", alpha=0.3)
    _legend(bottom, fontsize=8, loc="upper left", ncols=2)
    _week_ticks(bottom, weeks)
    ytick = max(_ytick_inches(top, 10), _ytick_inches(bottom, 10))
    _place(fig, left=ytick + 0.45, right=0.15, top=0.4, bottom=_rotated_label_inches(weeks, 7) + 0.05,
           rows=2, hgap=0.2)
    return _png(fig)


def inventory_chart(inventory: pd.DataFrame, top_skus: pd.DataFrame) -> bytes:
    """Projected on hand per week of the largest SKUs (by demand)."""
    fig = _figure(12.5, 5.0)
    ax = fig.subplots()
    weeks = sorted(inventory["week"].astype(str).unique())
    x = np.arange(len(weeks))
    colors = [f"C{i}" for i in range(10)]
    for index, sku in enumerate(top_skus["sku"].astype(str)):
        series = inventory[inventory["sku"].astype(str) == sku].groupby("week")["on_hand"].sum()
        series = series.reindex(weeks)
        ax.plot(x, series.to_numpy(float), color=colors[index % 10], linewidth=1.4, label=sku)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("projected on hand (units, end of week)", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    legend = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _title(ax, f"Projected inventory of the {len(top_skus)} largest SKUs by demand", 11)
    _week_ticks(ax, weeks)
    legend_w = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
    _place(fig, left=_ytick_inches(ax, 10) + 0.45, right=legend_w + 0.25, top=0.4,
           bottom=_rotated_label_inches(weeks, 7) + 0.05)
    return _png(fig)


def diff_chart(frame: pd.DataFrame, baseline: str) -> bytes:
    """The largest changes against the baseline as horizontal bars (up green, down red)."""
    top = frame.head(MAX_DIFF_BARS).iloc[::-1]
    fig = _figure(10.0, 0.35 * len(top) + 1.4)
    ax = fig.subplots()
    labels = [f"{b} · {m}" for b, m in zip(top["bucket"].astype(str), top["metric"].astype(str))]
    delta = top["delta"].to_numpy(float)
    ax.barh(np.arange(len(top)), delta, color=np.where(delta >= 0, "#31a354", "#d62728"))
    ax.set_yticks(np.arange(len(top)), labels, fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.grid(axis="x", alpha=0.3)
    _title(ax, f"Largest changes against baseline {baseline} (value - baseline)", 11)
    label_w = max((len(label) for label in labels), default=1) * 0.62 * 8 / 72.0
    _place(fig, left=min(label_w + 0.25, 6.0), right=0.3, top=0.4, bottom=0.45)
    return _png(fig)


# ------------------------------------------------------------------------------------ html
CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0 auto;max-width:1320px;
padding:24px;line-height:1.45;font-size:14px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;border-bottom:2px solid #3182bd;padding-bottom:3px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}
dl.header{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}
dl.header dt{font-weight:600;color:#555} dl.header dd{margin:0}
table{border-collapse:collapse;margin:8px 0 12px;font-size:12px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#eef3f8} td.text,th.text{text-align:left}
figure{margin:10px 0} figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:12px;color:#555}
p.note{background:#fff8e1;border-left:4px solid #f0ad4e;padding:6px 10px}
ul.over li{margin:2px 0} .muted{color:#777}
.table-wrap{overflow-x:auto}
@media print{body{max-width:none;padding:0;font-size:11px} h2{break-after:avoid} figure,table{break-inside:avoid}
.table-wrap{overflow:visible}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, text_columns: int = 1, cls: str = "") -> str:
    head = "".join(f'<th class="text">{_e(h)}</th>' if i < text_columns else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="text">{_e(c)}</td>' if i < text_columns else f"<td>{_e(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    attr = f' class="{_e(cls)}"' if cls else ""
    return f'<div class="table-wrap"><table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _figure_html(name: str, png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}" data-file="{_e(name)}">'
            f"<figcaption>{_e(caption)} (also <code>{_e(name)}</code> beside this page)</figcaption></figure>")


def _header_html(h: ReportHeader) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(h.parameters.items()) if v is not None) or "(defaults)"
    items = [
        ("Version", h.version_id), ("Status", h.status), ("Input set", h.input_set or "(none: imported)"),
        ("Plan shown", "anchored branch (adjusted levels)" if h.branch == "anchored" else "plain chain"),
        ("Parameters", params), ("Created", h.created_at), ("Planned (published)", h.planned_at or "never"),
        ("Run id", ", ".join(h.run_ids) or "–"),
    ]
    if h.note:
        items.append(("Note", h.note))
    return '<dl class="header">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _family_month_table(frame: pd.DataFrame) -> str:
    periods = sorted(frame["period"].astype(str).unique())
    long = frame.melt(id_vars=["family", "period"], value_vars=["demand", "supply", "backlog"], var_name="measure")
    wide = long.pivot_table(index=["family", "measure"], columns="period", values="value", aggfunc="sum",
                            fill_value=0.0, sort=True).reindex(columns=periods, fill_value=0.0)
    order = {"demand": 0, "supply": 1, "backlog": 2}
    wide = wide.sort_index(key=lambda idx: idx.map(order) if idx.name == "measure" else idx)
    rows = [[family, measure, *(_units(v) for v in values), _units(float(sum(values)))]
            for (family, measure), values in zip(wide.index, wide.to_numpy(float).tolist())]
    return _table(["family", "measure", *periods, "total"], rows, text_columns=2)


def _inventory_table(inventory: pd.DataFrame, top_skus: pd.DataFrame) -> str:
    stats = inventory.groupby("sku")["on_hand"].agg(["min", "mean", "last"])
    weeks_zero = inventory.assign(zero=inventory["on_hand"] <= OVER_CAPACITY_EPS).groupby("sku")["zero"].sum()
    rows = []
    for sku, demand in zip(top_skus["sku"].astype(str), top_skus["demand"].to_numpy(float)):
        s = stats.loc[sku] if sku in stats.index else pd.Series({"min": np.nan, "mean": np.nan, "last": np.nan})
        rows.append([sku, _units(demand), _units(float(s["min"])), _units(float(s["mean"])), _units(float(s["last"])),
                     int(weeks_zero.get(sku, 0))])
    return _table(["SKU", "demand", "min on hand", "average on hand", "closing on hand", "weeks at zero"], rows)


def _scorecard_html(scorecard: pd.DataFrame | None) -> str:
    if scorecard is None:
        return ('<p class="note">This version has no scorecard KPIs (plan level <code>scorecard</code>): it was '
                "planned before they existed, or its plan has not been re-materialized since. Re-materialize it to "
                "see the seven KPIs; the reference KPIs follow.</p>")
    totals = scorecard[scorecard["bucket_type"] == "total"].set_index("metric")
    rows = []
    for kpi in SCORECARD_KPIS:
        value = float(totals.loc[kpi.name, "value"]) if kpi.name in totals.index else float("nan")
        rows.append([kpi.label, format_value(value, kpi.unit), kpi.unit, kpi.meaning])
    out = "<h3>The seven plan KPIs (total)</h3>" + _table(["KPI", "total", "unit", "meaning"], rows)
    fam = scorecard[scorecard["bucket_type"] == "family"]
    if not fam.empty:
        wide = fam.pivot_table(index="bucket_key", columns="metric", values="value", aggfunc="first", sort=True)
        present = [k for k in SCORECARD_KPIS if k.name in wide.columns]
        fam_rows = [[family, *(format_value(wide.loc[family, k.name], k.unit) for k in present)]
                    for family in wide.index]
        out += "<h3>Per family</h3>" + _table(["family", *(k.label for k in present)], fam_rows)
    return out


def _reference_kpis_html(kpis: pd.DataFrame, level: str) -> str:
    plan = kpis[kpis["category"] == "plan"]
    totals = plan[plan["bucket_type"] == "total"]
    rows = [[m, format_value(v, u), u] for m, v, u in zip(totals["metric"], totals["value"], totals["unit"])]
    out = (f"<h3>Reference KPIs (plan level <code>{_e(level)}</code>, reference-compatible)</h3>"
           + _table(["KPI", "total", "unit"], rows))
    monthly = plan[plan["bucket_type"] == "month"]
    if not monthly.empty:
        wide = monthly.pivot_table(index="bucket_key", columns="metric", values="value", aggfunc="first", sort=True)
        units = dict(zip(monthly["metric"], monthly["unit"]))
        metrics = list(wide.columns)
        month_rows = [[month, *(format_value(wide.loc[month, m], units.get(m)) for m in metrics)]
                      for month in wide.index]
        out += "<h3>Reference KPIs per month</h3>" + _table(["month", *metrics], month_rows)
    cap = kpis[(kpis["category"] == "capacity") & (kpis["metric"] == "utilization")]
    if not cap.empty:
        util = cap["value"].to_numpy(float)
        i = int(util.argmax())
        out += (f"<p>Capacity: highest weekly utilization {_e(_pct(float(util[i])))} in "
                f"{_e(cap['bucket_key'].iloc[i])}; {int((util > 1.0 + OVER_CAPACITY_EPS).sum())} week(s) over 100 %.</p>")
    return out


def _comparison_html(comparison: ReportComparison, charts: dict[str, bytes]) -> str:
    if comparison.baseline is None:
        note = comparison.note or "no baseline: this version has no baseline to compare with"
        return f'<p class="note">{_e(note[:1].upper() + note[1:])}.</p>'
    frame = comparison.frame
    intro = (f"<p>Baseline: <strong>{_e(comparison.baseline)}</strong> (compared by {_e(comparison.by)}; "
             "delta = this version - baseline).</p>")
    if frame is None or frame.empty:
        return intro + "<p>No differences: this version's plan equals its baseline's.</p>"
    out = intro + _figure_html(DIFF_CHART, charts[DIFF_CHART], "changes against the baseline",
                               f"The {min(len(frame), MAX_DIFF_BARS)} largest changes")
    rows = [[b, m, _units(float(x)), _units(float(y)), f"{float(d):+,.1f}"]
            for b, m, x, y, d in zip(frame["bucket"].head(MAX_DIFF_ROWS), frame["metric"].head(MAX_DIFF_ROWS),
                                     frame["baseline"].head(MAX_DIFF_ROWS), frame["value"].head(MAX_DIFF_ROWS),
                                     frame["delta"].head(MAX_DIFF_ROWS))]
    more = f'<p class="muted">{len(frame) - MAX_DIFF_ROWS} more changed rows not listed.</p>' \
        if len(frame) > MAX_DIFF_ROWS else ""
    return out + _table([comparison.by, "metric", "baseline", "this version", "delta"], rows, text_columns=2) + more


def render_html(frames: ReportFrames, charts: dict[str, bytes]) -> str:
    """The page, with ``charts`` (file name -> PNG bytes) embedded."""
    h = frames.header
    over = over_capacity_text(frames.weekly)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Plan report {_e(h.version_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Plan report: {_e(h.version_id)}</h1>",
        _header_html(h),
        '<section id="family-month"><h2>1. Demand, supply and backlog per family and month</h2>',
        _figure_html(FAMILY_MONTH_CHART, charts[FAMILY_MONTH_CHART], "demand, supply and backlog per family",
                     "Bars: demand and planned supply; line: backlog (demand not covered)"),
        _family_month_table(frames.family_month),
        "</section>",
        '<section id="capacity"><h2>2. Weekly leveled load vs capacity</h2>',
        _figure_html(WEEKLY_LOAD_CHART, charts[WEEKLY_LOAD_CHART], "weekly leveled load vs capacity",
                     "Top: leveled load (red: over capacity), capacity, original load; bottom: spill in and out"),
        f"<p>{_e(over[0])}</p>",
        ('<ul class="over">' + "".join(f"<li>{_e(line)}</li>" for line in over[1:]) + "</ul>") if len(over) > 1 else "",
        "</section>",
        f'<section id="inventory"><h2>3. Projected inventory of the {len(frames.top_skus)} largest SKUs</h2>',
        _figure_html(INVENTORY_CHART, charts[INVENTORY_CHART], "projected inventory of the largest SKUs",
                     "Projected on hand at the end of each week (final MRP), SKUs ranked by total demand"),
        _inventory_table(frames.inventory, frames.top_skus),
        "</section>",
        '<section id="kpis"><h2>4. KPIs</h2>',
        _scorecard_html(frames.scorecard),
        _reference_kpis_html(frames.reference_kpis, frames.reference_level),
        "</section>",
        '<section id="baseline"><h2>5. Against the baseline</h2>',
        _comparison_html(frames.comparison, charts),
        "</section>",
        '<p class="muted">Written by plan-pipeline from the published plan in the plan store.</p>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def draw_charts(frames: ReportFrames) -> dict[str, bytes]:
    """file name -> PNG bytes of every chart the page shows."""
    charts = {
        FAMILY_MONTH_CHART: family_month_chart(frames.family_month),
        WEEKLY_LOAD_CHART: weekly_load_chart(frames.weekly),
        INVENTORY_CHART: inventory_chart(frames.inventory, frames.top_skus),
    }
    comparison = frames.comparison
    if comparison.baseline is not None and comparison.frame is not None and not comparison.frame.empty:
        charts[DIFF_CHART] = diff_chart(comparison.frame, comparison.baseline)
    return charts


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(frames: ReportFrames, out_dir: str | Path) -> ReportFiles:
    """Draw the charts and write them and ``report.html`` into ``out_dir`` (created if missing;
    the page last, each file replaced whole)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = draw_charts(frames)
    written = []
    for name, png in charts.items():
        _write(out / name, png)
        written.append(out / name)
    for name in ALL_CHARTS:  # a chart an earlier report of this folder had and this one has not
        if name not in charts:
            (out / name).unlink(missing_ok=True)
    page = out / REPORT_FILE
    _write(page, render_html(frames, charts).encode("utf-8"))
    return ReportFiles(html=page, charts=tuple(written))
