"""planning/keys.py gives pandas' own answers (factorize, isin, astype(str), nunique) on every kind
of key column: item-major runs, cycling weeks, missing values, NUL texts, mixed objects."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plan_pipeline.planning import keys
from plan_pipeline.planning.keys import count_distinct_keys, factorize_keys, isin_keys, text_keys

ITEMS = np.asarray([f"IT-{i:05d}" for i in range(300)], dtype=object)
WEEKS = np.asarray([f"2025-W{w:02d}" for w in range(1, 53)], dtype=object)


def _columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    item_major = np.repeat(ITEMS, 52)  # an MRP frame's item column: runs of one str object
    copies = np.asarray([str(v) + "" if i % 2 else "".join(v) for i, v in enumerate(item_major)], dtype=object)
    with_missing = item_major.copy()
    with_missing[104:156] = None
    with_missing[520:572] = np.nan
    with_missing[1000] = None
    with_missing[2000] = np.nan
    revisits = np.concatenate([item_major, item_major[::-1]])  # a value's runs far apart
    nul = np.repeat(np.asarray(["a\0x", "a\0y", "b", "a\0x"], dtype=object), 40)  # pandas' hash table cuts at NUL
    mixed = np.repeat(np.asarray([1, 1.0, True, "1", None, 2, "x"], dtype=object), 30)
    return {
        "item_major": item_major,
        "equal_texts_not_the_same_objects": copies,
        "with_missing": with_missing,
        "revisits": revisits,
        "weeks_cycling": np.tile(WEEKS, 300),
        "short_runs": np.repeat(ITEMS, 2),
        "random": rng.choice(ITEMS[:20], size=5000),
        "nul_texts": nul,
        "mixed_objects": mixed,
        "with_pd_na": np.asarray(["a"] * 20 + [pd.NA] * 20 + ["b"] * 20, dtype=object),
        "empty": np.asarray([], dtype=object),
        "one": np.asarray(["a"], dtype=object),
        "all_missing": np.asarray([None] * 50, dtype=object),
    }


COLUMNS = _columns()


@pytest.mark.parametrize("name", list(COLUMNS))
@pytest.mark.parametrize("use_na_sentinel", [True, False])
def test_factorize_keys_is_pd_factorize(name, use_na_sentinel):
    values = COLUMNS[name]
    for column in (values, pd.Series(values, dtype=object)):
        codes, uniques = factorize_keys(column, use_na_sentinel=use_na_sentinel)
        want_codes, want_uniques = pd.factorize(column, use_na_sentinel=use_na_sentinel)
        np.testing.assert_array_equal(codes, want_codes)
        assert type(uniques) is type(want_uniques)
        assert len(uniques) == len(want_uniques)
        assert all(a is b or a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(uniques, want_uniques, strict=True))


@pytest.mark.parametrize("name", list(COLUMNS))
def test_isin_text_and_nunique_are_pandas(name):
    values = COLUMNS[name]
    series = pd.Series(values, dtype=object)
    allowed = {ITEMS[3], ITEMS[299], "a\0x", "1", "None", "nan", WEEKS[5]}
    np.testing.assert_array_equal(isin_keys(values, allowed), series.isin(allowed).to_numpy())
    np.testing.assert_array_equal(isin_keys(series, allowed, as_text=True), series.astype(str).isin(allowed).to_numpy())
    codes, texts = text_keys(series)
    # the formula capacity leveling used before (factorize, then each distinct value as text)
    row_codes, uniques = pd.factorize(series, use_na_sentinel=False)
    want_codes, want_texts = pd.factorize(pd.Index(uniques, dtype=object).astype(str))
    np.testing.assert_array_equal(codes, want_codes.astype(np.int64)[row_codes])
    np.testing.assert_array_equal(texts, np.asarray(want_texts, dtype=object))
    if name in ("item_major", "weeks_cycling", "revisits", "short_runs"):  # texts only: astype(str)
        np.testing.assert_array_equal(texts[codes], series.astype(str).to_numpy())
    assert count_distinct_keys(series) == series.nunique()


def test_runs_are_used_for_item_major_columns_and_not_for_cycling_ones(monkeypatch):
    """The shortcut is taken where it pays (else the tests above would only test pandas)."""
    hashed: list[int] = []
    original = pd.factorize

    def factorize(values, *args, **kwargs):
        hashed.append(len(values))
        return original(values, *args, **kwargs)

    monkeypatch.setattr(keys.pd, "factorize", factorize)
    factorize_keys(COLUMNS["item_major"])
    factorize_keys(COLUMNS["weeks_cycling"])
    factorize_keys(COLUMNS["short_runs"])
    assert hashed == [len(ITEMS), len(COLUMNS["weeks_cycling"]), len(COLUMNS["short_runs"])]


def test_typed_columns_keep_pandas_own_path():
    categorical = pd.Series(pd.Categorical(np.repeat(["b", "a"], 10)))
    codes, uniques = factorize_keys(categorical)
    want_codes, want_uniques = pd.factorize(categorical)
    np.testing.assert_array_equal(codes, want_codes)
    assert type(uniques) is type(want_uniques)
    strings = pd.Series(np.repeat(["b", "a"], 10), dtype="string")
    assert type(factorize_keys(strings)[1]) is type(pd.factorize(strings)[1])
