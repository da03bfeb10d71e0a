"""Parse an input folder in the reference format into :class:`PlanningInputs`.

This module parses; it does not judge. Validation (errors naming file, row, column and rule)
lives in :mod:`plan_pipeline.inputs.validation` and runs before anything is imported.
Parsing follows the reference's tolerant rules so that validated data and reference data
produce the same numbers: empty numeric fields take the column default, items whose
lt/lot/moq do not all parse fall back to (0, 1, 0).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from plan_pipeline.planning.types import INPUT_COLUMNS, PlanningInputs, empty_frame

CALENDAR_FILE = "planning_calendar.json"
REQUIRED_FILES = ("demand_family", "capacity", "mix_share")
NUMERIC_DEFAULTS: dict[str, dict[str, float]] = {
    "demand_family": {"demand": 0.0},
    "capacity": {"capacity": 0.0},
    "mix_share": {"share": 0.0},
    "item": {"lt": 0.0, "lot": 1.0, "moq": 0.0},
    "inventory": {"qty": 0.0},
    "open_po": {"qty": 0.0},
    "bom": {"qty": 0.0},
    "period_cost": {"cost": 0.0},
    "period_score": {"score": 0.0},
}


def read_input_text(path: Path) -> str:
    """The text of an input file (CSV or JSON): UTF-8, a leading byte order mark dropped.

    The validator and the loader both read through here, so a file with a BOM (as spreadsheet
    programs write it) means the same to both. Raises ``UnicodeDecodeError`` for non-UTF-8 bytes.
    """
    return path.read_bytes().decode("utf-8-sig")


def read_csv_text(path: Path) -> pd.DataFrame:
    """Read a CSV as text: every cell a ``str`` (empty cells are ``""``)."""
    return pd.read_csv(
        io.StringIO(read_input_text(path), newline=""), dtype=str, keep_default_na=False, na_filter=False
    )


def parse_table(name: str, raw: pd.DataFrame) -> pd.DataFrame:
    """Typed frame with exactly ``INPUT_COLUMNS[name]`` from a text frame."""
    out = pd.DataFrame(index=range(len(raw)))
    defaults = NUMERIC_DEFAULTS[name]
    for col in INPUT_COLUMNS[name]:
        if col in defaults:
            if col in raw.columns:
                values = pd.to_numeric(raw[col].reset_index(drop=True), errors="coerce")
            else:
                values = pd.Series(float("nan"), index=out.index)
            out[col] = values.astype("float64")
        else:
            if col in raw.columns:
                out[col] = raw[col].reset_index(drop=True).astype(object)
            else:
                out[col] = pd.Series(["None"] * len(raw), dtype=object)
    if name == "item":
        bad = out[["lt", "lot", "moq"]].isna() & (raw.reindex(columns=["lt", "lot", "moq"]).reset_index(drop=True).fillna("") != "")
        reset = bad.any(axis=1)
        for col, default in defaults.items():
            out[col] = out[col].fillna(default)
            out.loc[reset, col] = default
    else:
        for col, default in defaults.items():
            out[col] = out[col].fillna(default)
    return out.reset_index(drop=True)


def load_input_dir(path: str | Path) -> PlanningInputs:
    """Parse every known file of an input folder (absent optional files become empty tables)."""
    folder = Path(path)
    tables = {}
    for name in INPUT_COLUMNS:
        file = folder / f"{name}.csv"
        if file.is_file():
            tables[name] = parse_table(name, read_csv_text(file))
        elif name in REQUIRED_FILES:
            raise FileNotFoundError(f"{file}: required input file is missing")
        else:
            tables[name] = empty_frame(name).astype(
                dict.fromkeys(NUMERIC_DEFAULTS[name], "float64")
            )
    calendar = None
    cal_file = folder / CALENDAR_FILE
    if cal_file.is_file():
        calendar = json.loads(read_input_text(cal_file))
    return PlanningInputs(calendar=calendar, **tables)
