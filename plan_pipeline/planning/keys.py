"""Key columns of plan frames (item, SKU, week text) hashed once per run of equal values.

Plan frames are item-major: an MRP or capacity frame lists an item's weeks one after another, a
detail frame a SKU's, so their ``item`` / ``sku`` column is long runs of one value (105 rows each
at 50,000 SKUs x 104 weeks, 15.75 M rows per MRP level). Comparing a row with its neighbour is
cheap (usually the same ``str`` object: an identity check); hashing every row is not (pandas'
string hash table reads each text). Hashing only the first row of each run gives pandas' own
result, value for value, in about a fifth of the time. A column without long runs (``week``,
which cycles) goes to pandas directly after a look at its first rows.

Each function returns exactly what the pandas call named in its docstring returns.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Rows looked at to tell whether a column runs (kept small: a cycling column pays only this).
_PROBE_ROWS = 4096
#: Runs shorter than this on average are not worth comparing neighbours for.
_MIN_MEAN_RUN = 4


def _values(column: Any) -> np.ndarray:
    return column.to_numpy() if isinstance(column, pd.Series | pd.Index) else np.asarray(column)


def _run_starts(values: np.ndarray) -> np.ndarray | None:
    """The first row of each run of equal neighbours, or None when the column has no long runs."""
    n = len(values)
    if values.dtype != object or values.ndim != 1 or n < 2 * _MIN_MEAN_RUN:
        return None
    try:
        probe = values[:_PROBE_ROWS]
        if np.count_nonzero(probe[1:] != probe[:-1]) + 1 > len(probe) / _MIN_MEAN_RUN:
            return None
        heads = np.empty(n, dtype=bool)
        heads[0] = True
        np.not_equal(values[1:], values[:-1], out=heads[1:])
    except (TypeError, ValueError):  # a value whose comparison is not a plain bool (pd.NA, arrays)
        return None
    starts = np.flatnonzero(heads)
    if len(starts) * _MIN_MEAN_RUN > n:
        return None
    # Only texts and missing values: a str equals only a str of the same text, so every row is
    # the text of its run's first row (1, 1.0 and True are equal but print differently).
    if pd.api.types.infer_dtype(values[starts], skipna=True) not in ("string", "empty"):
        return None
    return starts


def _expand(run_values: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    return np.repeat(run_values, np.diff(np.append(starts, n)))


def factorize_keys(column: Any, *, use_na_sentinel: bool = True) -> tuple[np.ndarray, Any]:
    """``pd.factorize(column, use_na_sentinel=...)``: the same codes and uniques."""
    values = _values(column)
    # a Series or Index of another dtype (categorical, pandas strings) keeps pandas' own path
    typed = isinstance(column, pd.Series | pd.Index) and column.dtype != object
    starts = None if typed else _run_starts(values)
    if starts is None:
        return pd.factorize(column, use_na_sentinel=use_na_sentinel)
    codes, uniques = pd.factorize(values[starts], use_na_sentinel=use_na_sentinel)
    if isinstance(column, pd.Series | pd.Index):
        uniques = pd.Index(uniques, dtype=object)  # what pd.factorize gives for a Series
    return _expand(codes, starts, len(values)), uniques


def isin_keys(column: Any, allowed: Any, *, as_text: bool = False) -> np.ndarray:
    """``pd.Series(column).isin(allowed)`` as a bool array; with ``as_text``
    ``pd.Series(column).astype(str).isin(allowed)``. (Asked of each run's first row, not through
    factorize's codes: pandas' string hash table cuts texts at a NUL, ``isin`` does not.)"""
    values = _values(column)
    typed = isinstance(column, pd.Series | pd.Index) and column.dtype != object
    starts = None if typed else _run_starts(values)
    rows = pd.Series(column if starts is None else values[starts], dtype=None if typed else object)
    if as_text:
        rows = rows.astype(str)
    found = rows.isin(allowed).to_numpy()
    return found if starts is None else _expand(found, starts, len(values))


def text_keys(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """(int64 code per row, distinct texts): ``texts[codes]`` is ``column.astype(str)`` for texts
    (a missing value reads ``'nan'``: ``pd.factorize`` keeps None as NaN), texts in order of first
    appearance; equal texts share a code. Each distinct value is converted once."""
    codes, uniques = factorize_keys(column, use_na_sentinel=False)
    text_codes, texts = pd.factorize(pd.Index(np.asarray(uniques, dtype=object), dtype=object).astype(str))
    return text_codes.astype(np.int64)[codes], np.asarray(texts, dtype=object)


def count_distinct_keys(column: Any) -> int:
    """``pd.Series(column).nunique()`` (missing values not counted)."""
    return len(factorize_keys(column)[1])
