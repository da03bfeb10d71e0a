"""Deterministic generator of planning input folders in the reference format.

:func:`generate_sample_inputs` writes a complete input set (every CSV of
:data:`plan_pipeline.planning.types.INPUT_COLUMNS` plus ``planning_calendar.json``) from a seed.
Everything is drawn from one ``numpy.random.Generator`` in a fixed order and written with fixed
formatting, so the same arguments give byte-identical files. It is vectorised: 20,000 SKUs are
generated in well under a second or two.

What the data looks like:

* families (``BIKES``, ``HELMETS``, ``LIGHTS``, … then ``FAM013`` …) with SKUs ``BK-100``,
  ``BK-200``, … and components named after the SKU (``BK-100-FRAME``, ``BK-100-WHEELSET``, …);
* seasonal monthly family demand (a yearly cosine peaking around June, per-family amplitude,
  slight trend and noise);
* pooled capacity on two lines (``LINE-A`` 55 %, ``LINE-B`` 45 %) sized at the average monthly
  demand, so peak months are tight (rationing) and off-season months loose;
* mix shares per family summing to 1, items with lead times in days, lots and some MOQs
  (multiples of the lot), stock in ``DC-EAST`` / ``DC-WEST`` (SKUs) and ``PLANT`` (components),
  a few open POs due in the first weeks (ISO dates, one in four as a month ``YYYY-MM``), a
  one-level BOM (SKU -> components), period cost and score;
* a ``planning_calendar.json`` following the reference sample convention (pipeline spec §3.1),
  see :func:`build_iso_week_calendar`.

The output validates with no errors and no warnings (:mod:`plan_pipeline.inputs.validation`).
``python -m plan_pipeline.inputs.sample [OUT_DIR] [--families N ...]`` runs it from the shell;
without arguments it regenerates the bundled sample (:data:`BUNDLED_SAMPLE_DIR`).
"""
from __future__ import annotations

import argparse
import calendar as _stdcal
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BUNDLED_SAMPLE_ARGS",
    "BUNDLED_SAMPLE_DIR",
    "build_iso_week_calendar",
    "generate_sample_inputs",
    "write_bundled_sample",
]

BUNDLED_SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data" / "sample_plan"
#: arguments the bundled sample was generated with (kept in sync by a test)
BUNDLED_SAMPLE_ARGS: dict[str, Any] = {
    "families": 3,
    "skus_per_family": 4,
    "months": 12,
    "components_per_sku": 1,
    "seed": 7,
    "start": "2025-01",
}

# (family, SKU prefix, component stems)
_FAMILIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("BIKES", "BK", ("FRAME", "WHEELSET", "DRIVETRAIN")),
    ("HELMETS", "HM", ("SHELL", "LINER", "STRAP")),
    ("LIGHTS", "LT", ("LED", "BATTERY", "LENS")),
    ("LOCKS", "LK", ("SHACKLE", "CYLINDER", "KEYSET")),
    ("PUMPS", "PU", ("BARREL", "VALVE", "HOSE")),
    ("BOTTLES", "BT", ("BODY", "CAP", "SLEEVE")),
    ("GLOVES", "GV", ("PALM", "BACK", "CUFF")),
    ("RACKS", "RK", ("TUBE", "BRACKET", "MOUNT")),
    ("SADDLES", "SD", ("RAIL", "FOAM", "COVER")),
    ("TIRES", "TR", ("CASING", "BEAD", "TREAD")),
    ("PEDALS", "PD", ("AXLE", "BODY", "PIN")),
    ("BAGS", "BG", ("FABRIC", "ZIP", "BUCKLE")),
]
_WORKCENTERS = (("LINE-A", 0.55), ("LINE-B", 0.45))
_WEEKS_PER_MONTH = 52.0 / 12.0
_SKU_LOTS = np.array([1, 5, 10, 20, 50, 100, 200, 500, 1000])
_COMP_LOTS = np.array([1, 10, 25, 50, 100, 250, 500, 1000, 2500])
_SKU_LT = np.array([5, 7, 10, 14])
_COMP_LT = np.array([7, 14, 21, 28])


def _parse_month(start: str) -> tuple[int, int]:
    try:
        y, m = start.split("-")
        year, month = int(y), int(m)
        if len(y) != 4 or len(m) != 2 or not 1 <= month <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"start must be a month YYYY-MM, got {start!r}") from None
    return year, month


def _months(start: str, months: int) -> list[tuple[int, int]]:
    year, month = _parse_month(start)
    out = []
    for i in range(months):
        k = (month - 1) + i
        out.append((year + k // 12, k % 12 + 1))
    return out


def build_iso_week_calendar(start: str = "2025-01", months: int = 12) -> dict:
    """Calendar document with ISO-week fragments (pipeline spec §3.1 sample convention).

    Every month is split into Monday–Sunday fragments clipped at the month's first and last
    day; ``week_code`` is the ISO ``YYYY-Www`` of the fragment, ``weight`` its number of days,
    ``sequence`` numbers the distinct week codes 1, 2, … in calendar order (a week shared by two
    months has one sequence).
    """
    periods = []
    sequence: dict[str, int] = {}
    for year, month in _months(start, months):
        first = date(year, month, 1)
        last = date(year, month, _stdcal.monthrange(year, month)[1])
        weeks = []
        d = first
        while d <= last:
            end = min(d + timedelta(days=6 - d.weekday()), last)
            iso = d.isocalendar()
            code = f"{iso.year}-W{iso.week:02d}"
            seq = sequence.setdefault(code, len(sequence) + 1)
            weeks.append(
                {
                    "week_code": code,
                    "sequence": seq,
                    "start_date": d.isoformat(),
                    "end_date": end.isoformat(),
                    "weight": (end - d).days + 1,
                }
            )
            d = end + timedelta(days=1)
        periods.append(
            {
                "period": f"{year:04d}-{month:02d}",
                "start_date": first.isoformat(),
                "end_date": last.isoformat(),
                "weeks": weeks,
            }
        )
    return {"calendar_type": "custom", "week_unit": "day", "periods": periods}


def _pick_lot(lots: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Largest lot <= target (at least the smallest lot)."""
    idx = np.searchsorted(lots, target, side="right") - 1
    return lots[np.clip(idx, 0, len(lots) - 1)]


def _write_csv(path: Path, frame: pd.DataFrame) -> int:
    frame.to_csv(path, index=False, lineterminator="\n")
    return len(frame)


def generate_sample_inputs(
    out_dir: str | Path,
    families: int = 3,
    skus_per_family: int = 4,
    months: int = 12,
    components_per_sku: int = 1,
    seed: int = 7,
    start: str = "2025-01",
) -> dict:
    """Write a complete, valid input folder to ``out_dir`` and return a summary.

    The summary has ``out_dir``, the arguments, ``skus``, ``components``, ``periods``
    (first, last) and ``files`` (file name -> data rows; periods for the calendar).
    """
    if families < 1 or skus_per_family < 1 or months < 1 or components_per_sku < 0:
        raise ValueError("families, skus_per_family and months must be >= 1, components_per_sku >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    F, S, M, C = families, skus_per_family, months, components_per_sku
    month_list = _months(start, M)
    periods = np.array([f"{y:04d}-{m:02d}" for y, m in month_list], dtype=object)
    month_of_year = np.array([m for _, m in month_list], dtype=float)

    fam_names, prefixes, stems = [], [], []
    for f in range(F):
        if f < len(_FAMILIES):
            name, prefix, st = _FAMILIES[f]
        else:
            name, prefix, st = f"FAM{f + 1:03d}", f"F{f + 1:03d}", ()
        fam_names.append(name)
        prefixes.append(prefix)
        stems.append(st)
    fam_names_a = np.array(fam_names, dtype=object)

    # --- demand: family x month, seasonal
    base = rng.uniform(60.0, 160.0, F) * S  # units per month per family at the seasonal mean
    amp = rng.uniform(0.2, 0.4, F)
    peak = 6.0 + rng.normal(0.0, 0.8, F)
    trend = rng.uniform(-0.004, 0.01, F)
    noise = np.clip(rng.normal(1.0, 0.05, (F, M)), 0.85, 1.15)
    season = 1.0 + amp[:, None] * np.cos(2 * np.pi * (month_of_year[None, :] - peak[:, None]) / 12.0)
    growth = (1.0 + trend[:, None]) ** np.arange(M)[None, :]
    demand = np.maximum(0, np.rint(base[:, None] * season * growth * noise)).astype(np.int64)
    demand_df = pd.DataFrame(
        {
            "family": np.repeat(fam_names_a, M),
            "period": np.tile(periods, F),
            "demand": demand.reshape(-1),
        }
    )

    # --- capacity: pooled level at the average demand => peak months tight, off-season loose
    total = demand.sum(axis=0).astype(float)
    cap_total = np.rint(total.mean() * rng.uniform(1.0, 1.06, M)).astype(np.int64)
    share_a = _WORKCENTERS[0][1]
    cap_a = np.rint(cap_total * share_a).astype(np.int64)
    cap_b = cap_total - cap_a
    capacity_df = pd.DataFrame(
        {
            "workcenter": np.tile(np.array([w for w, _ in _WORKCENTERS], dtype=object), M),
            "period": np.repeat(periods, 2),
            "capacity": np.column_stack([cap_a, cap_b]).reshape(-1),
        }
    )

    # --- SKUs and mix shares
    n_sku = F * S
    fam_idx = np.repeat(np.arange(F), S)
    sku_num = np.tile((np.arange(S) + 1) * 100, F)
    sku_codes = (
        pd.Series(np.array(prefixes, dtype=object)[fam_idx]) + "-" + pd.Series(sku_num).astype(str)
    ).to_numpy(dtype=object)
    raw = rng.gamma(3.0, 1.0, n_sku)
    shares = raw / np.bincount(fam_idx, weights=raw)[fam_idx]
    # small families: 2 decimals summing exactly to 1 (the rounding residual goes to each
    # family's largest share); large ones: enough decimals to keep every share > 0
    decimals = 2 if S <= 10 else int(np.ceil(np.log10(S))) + 3
    unit = 10.0 ** -decimals
    shares_r = np.maximum(np.round(shares, decimals), unit)
    if S <= 10:
        residual = 1.0 - np.bincount(fam_idx, weights=shares_r)
        order = np.lexsort((-shares_r, fam_idx))
        first_of_family = order[np.searchsorted(fam_idx[order], np.arange(F))]
        shares_r[first_of_family] += residual
        shares_r = np.round(shares_r, decimals)
    mix_df = pd.DataFrame(
        {
            "family": fam_names_a[fam_idx],
            "sku": sku_codes,
            "share": [f"{x:.{decimals}f}" for x in shares_r],
        }
    )

    # --- items
    weekly_sku = demand.mean(axis=1)[fam_idx] * shares / _WEEKS_PER_MONTH
    sku_lt = rng.choice(_SKU_LT, n_sku)
    sku_lot = _pick_lot(_SKU_LOTS, 0.5 * weekly_sku)
    sku_moq = np.where(rng.random(n_sku) < 0.3, 2 * sku_lot, 0)

    n_comp = n_sku * C
    comp_parent = np.repeat(np.arange(n_sku), C)  # SKU index of each component
    comp_k = np.tile(np.arange(C), n_sku)
    suffix = np.empty(n_comp, dtype=object)
    for k in range(C):
        sel = comp_k == k
        stem_k = np.array([st[k] if k < len(st) else f"C{k + 1}" for st in stems], dtype=object)
        suffix[sel] = stem_k[fam_idx[comp_parent[sel]]]
    comp_codes = (pd.Series(sku_codes[comp_parent]) + "-" + pd.Series(suffix)).to_numpy(dtype=object)
    comp_qty = np.where(comp_k == 0, 1, rng.choice(np.array([1, 2, 4]), n_comp))
    weekly_comp = weekly_sku[comp_parent] * comp_qty
    comp_lt = rng.choice(_COMP_LT, n_comp)
    comp_lot = _pick_lot(_COMP_LOTS, weekly_comp)
    comp_moq = np.where(rng.random(n_comp) < 0.2, 4 * comp_lot, 0)

    item_df = pd.DataFrame(
        {
            "item": np.concatenate([sku_codes, comp_codes]),
            "lt": np.concatenate([sku_lt, comp_lt]),
            "lot": np.concatenate([sku_lot, comp_lot]),
            "moq": np.concatenate([sku_moq, comp_moq]),
        }
    )

    # --- inventory: SKUs in DC-EAST (+ DC-WEST for ~30 %), components in PLANT
    east = np.rint(weekly_sku * rng.uniform(0.5, 2.0, n_sku)).astype(np.int64)
    has_west = rng.random(n_sku) < 0.3
    west = np.rint(weekly_sku * rng.uniform(0.2, 1.0, n_sku)).astype(np.int64)
    plant = np.rint(weekly_comp * rng.uniform(1.0, 3.0, n_comp)).astype(np.int64)
    sku_inv = pd.DataFrame(
        {
            "item": np.concatenate([sku_codes, sku_codes[has_west]]),
            "loc": np.concatenate([np.full(n_sku, "DC-EAST", dtype=object), np.full(int(has_west.sum()), "DC-WEST", dtype=object)]),
            "qty": np.concatenate([east, west[has_west]]),
            "_k": np.concatenate([np.arange(n_sku), np.flatnonzero(has_west)]),
        }
    ).sort_values("_k", kind="stable")
    inventory_df = pd.concat(
        [
            sku_inv.drop(columns="_k"),
            pd.DataFrame({"item": comp_codes, "loc": "PLANT", "qty": plant}),
        ],
        ignore_index=True,
    )

    # --- open POs: a few, due in the first weeks of the horizon
    all_items = np.concatenate([sku_codes, comp_codes])
    all_lot = np.concatenate([sku_lot, comp_lot])
    all_weekly = np.concatenate([weekly_sku, weekly_comp])
    n_po = int(min(len(all_items), max(4, n_sku // 25)))
    po_idx = rng.choice(len(all_items), n_po, replace=False)
    first_day = date(*month_list[0], 1)
    last_day = date(*month_list[-1], _stdcal.monthrange(*month_list[-1])[1])
    span = min(35, (last_day - first_day).days + 1)
    offsets = rng.integers(0, span, n_po)
    po_qty = all_lot[po_idx] * np.ceil(rng.uniform(1.0, 3.0, n_po) * all_weekly[po_idx] / all_lot[po_idx])
    po_qty = np.maximum(po_qty, all_lot[po_idx]).astype(np.int64)
    po = pd.DataFrame({"item": all_items[po_idx], "off": offsets, "qty": po_qty})
    po = po.sort_values(["off", "item"], kind="stable").reset_index(drop=True)
    due_dates = [first_day + timedelta(days=int(o)) for o in po["off"]]
    po["due"] = [
        d.isoformat()[:7] if i % 4 == 3 else d.isoformat() for i, d in enumerate(due_dates)
    ]
    open_po_df = po[["item", "due", "qty"]]

    # --- BOM: SKU -> components
    bom_df = pd.DataFrame({"parent": sku_codes[comp_parent], "child": comp_codes, "qty": comp_qty})

    # --- period cost and score
    cost = np.rint(100.0 * (1.0 + 0.015 * np.arange(M)) * rng.uniform(0.97, 1.03, M)).astype(np.int64)
    score = np.round(rng.uniform(0.8, 1.0, M), 2)
    period_cost_df = pd.DataFrame({"period": periods, "cost": cost})
    period_score_df = pd.DataFrame({"period": periods, "score": [f"{x:.2f}" for x in score]})

    files: dict[str, int] = {}
    for name, frame in (
        ("demand_family", demand_df),
        ("capacity", capacity_df),
        ("mix_share", mix_df),
        ("item", item_df),
        ("inventory", inventory_df),
        ("open_po", open_po_df),
        ("bom", bom_df),
        ("period_cost", period_cost_df),
        ("period_score", period_score_df),
    ):
        files[f"{name}.csv"] = _write_csv(out / f"{name}.csv", frame)
    cal = build_iso_week_calendar(start, M)
    (out / "planning_calendar.json").write_text(
        json.dumps(cal, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    files["planning_calendar.json"] = len(cal["periods"])

    return {
        "out_dir": str(out),
        "families": F,
        "skus_per_family": S,
        "months": M,
        "components_per_sku": C,
        "seed": seed,
        "start": start,
        "skus": n_sku,
        "components": n_comp,
        "periods": [str(periods[0]), str(periods[-1])],
        "files": files,
    }


def write_bundled_sample(out_dir: str | Path = BUNDLED_SAMPLE_DIR) -> dict:
    """(Re)generate the bundled demo sample with :data:`BUNDLED_SAMPLE_ARGS`."""
    return generate_sample_inputs(out_dir, **BUNDLED_SAMPLE_ARGS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a planning input folder (reference format).")
    parser.add_argument("out_dir", nargs="?", default=None, help="output folder (default: the bundled sample)")
    parser.add_argument("--families", type=int, default=BUNDLED_SAMPLE_ARGS["families"])
    parser.add_argument("--skus-per-family", type=int, default=BUNDLED_SAMPLE_ARGS["skus_per_family"])
    parser.add_argument("--months", type=int, default=BUNDLED_SAMPLE_ARGS["months"])
    parser.add_argument("--components-per-sku", type=int, default=BUNDLED_SAMPLE_ARGS["components_per_sku"])
    parser.add_argument("--seed", type=int, default=BUNDLED_SAMPLE_ARGS["seed"])
    parser.add_argument("--start", default=BUNDLED_SAMPLE_ARGS["start"])
    args = parser.parse_args(argv)
    summary = generate_sample_inputs(
        args.out_dir or BUNDLED_SAMPLE_DIR,
        families=args.families,
        skus_per_family=args.skus_per_family,
        months=args.months,
        components_per_sku=args.components_per_sku,
        seed=args.seed,
        start=args.start,
    )
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
