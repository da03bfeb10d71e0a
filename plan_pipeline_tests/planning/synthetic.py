"""Build small typed PlanningInputs by hand for property and edge-case tests."""
from __future__ import annotations

import pandas as pd

from plan_pipeline.inputs.loader import NUMERIC_DEFAULTS
from plan_pipeline.planning.types import INPUT_COLUMNS, PlanningInputs


def frame(name: str, rows=()) -> pd.DataFrame:
    cols = INPUT_COLUMNS[name]
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    df = pd.DataFrame(data, columns=cols)
    for c in cols:
        if c in NUMERIC_DEFAULTS[name]:
            df[c] = df[c].astype("float64")
        else:
            df[c] = df[c].astype(object)
    return df


def make_inputs(calendar: dict | None = None, **tables) -> PlanningInputs:
    kwargs = {name: frame(name, tables.get(name, ())) for name in INPUT_COLUMNS}
    return PlanningInputs(calendar=calendar, **kwargs)


def without_calendar(inputs: PlanningInputs) -> PlanningInputs:
    return PlanningInputs(**{**{n: inputs.table(n) for n in INPUT_COLUMNS}, "calendar": None})
