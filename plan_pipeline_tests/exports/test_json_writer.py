"""The fast JSON writer writes exactly the bytes ``json.dumps(doc, ensure_ascii=False, indent=2)``
writes (the reference file format the oracle compares), value by value and document by document."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from plan_pipeline.exports import json_writer
from plan_pipeline.exports.json_writer import (
    NumberColumn,
    RecordStream,
    RecordTable,
    TextColumn,
    document_chunks,
    dumps,
    float_tokens,
    int_tokens,
    materialize,
    write_json_document,
)

# Values where orjson and json differ, where they might, and ordinary ones.
TRICKY_FLOATS = [
    0.0, -0.0, 1.0, -1.0, 5.0, 0.1, 1 / 3, 2 / 3, 100.0, 12345.678, 36096.12903225806,
    1e-4, 0.0001, 9.999999999999999e-05, 1e-05, -1e-05, 1.5e-05, 1e-06, 0.000123, 1e-07, 1e-09, 1e-10,
    1.5e-10, 1e-300, 5e-324, -5e-324, 2.2250738585072014e-308,
    1e15, 1e15 + 0.3, 999999999999999.9, 1e16, -1e16, 1.2345678901234568e+17, 1e21, 1e22, 1e300, 1.7976931348623157e308,
    float(2**53), float(2**53 + 2), float(2**63), 9007199254740993.0, 1234567890123456.7,
    float("nan"), float("inf"), float("-inf"),
]


def _json_bytes(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")


def _random_floats(n: int = 200_000) -> np.ndarray:
    rng = np.random.default_rng(20261202)
    return np.concatenate([
        rng.standard_normal(n) * 10.0 ** rng.integers(-12, 20, n),  # every magnitude
        np.round(rng.random(n) * 1e5, 6),  # quantities rounded to 6 decimals
        np.round(rng.random(n) * 100, 2),
        rng.integers(-10**6, 10**6, n).astype(float),  # integral floats (5.0)
        np.frombuffer(rng.bytes(8 * n), dtype=np.float64),  # arbitrary bit patterns, NaN payloads included
    ])


def test_float_tokens_match_json_on_edge_values():
    values = np.array(TRICKY_FLOATS)
    assert [t.decode() for t in float_tokens(values)] == [json.dumps(v) for v in TRICKY_FLOATS]
    assert float_tokens(np.array([])) == []


def test_float_tokens_match_json_on_random_values_of_every_magnitude():
    values = _random_floats()
    expected = [json.dumps(v).encode() for v in values.tolist()]
    assert float_tokens(values) == expected


def test_int_tokens_match_json():
    values = np.array([0, 1, -1, 7, 2**31, -(2**31), 2**62, -(2**63), 2**63 - 1], dtype=np.int64)
    assert int_tokens(values) == [json.dumps(v).encode() for v in values.tolist()]


def test_every_string_is_escaped_as_json_does():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["".join(chars), "", '"quoted" \\ back', "tab\tnl\ncr\rff\fbs\b\x00\x1f\x7f", "日本語 ライト", "\u2028\u2029"]
    column = TextColumn(texts + chars[:0x3000])
    codes, tokens = column.encoded()
    assert [tokens[c] for c in codes] == [json.dumps(t, ensure_ascii=False).encode() for t in texts + chars[:0x3000]]


@pytest.mark.parametrize("value", [
    {"a": 1e-05, "b": [1.0, 2.5, 1e16], "c": None, "d": True, "e": {}, "f": [], "g": "é\n"},
    {"nan": float("nan"), "inf": [float("inf"), float("-inf")]},
    {"numpy": np.float64(0.5), "k": 3},
    {1: "int key", "x": 2},
    {"big": 2**70, "neg": -(2**64)},
    {"tuple": (1, 2.0, "3"), "nested": [[[]], [{}], {"a": {"b": [0.0001, -0.0]}}]},
    [], {}, "text", 1.5e-7, None,
])
def test_small_values_are_written_as_json_dumps_does(value):
    assert dumps(value) == _json_bytes(value)


def _table(n: int, start: int = 0, stop: int | None = None) -> RecordTable:
    """``n`` rows of every kind of cell (rows ``start:stop`` of them: a slice of the same table)."""
    rng = np.random.default_rng(n)
    floats = rng.standard_normal(n) * 10.0 ** rng.integers(-9, 18, n)
    floats[: min(n, 7)] = [float("nan"), float("inf"), -0.0, 0.0, 1e-05, -0.0, 5.0][: min(n, 7)]
    integral = np.round(rng.random(n) * 50)
    lt_weeks, as_int, counts = rng.integers(0, 9, n).astype(float), rng.random(n) < 0.5, rng.integers(-5, 5, n)
    rows = slice(start, stop)
    return RecordTable([
        ("item", TextColumn([f"IT-{i // 13}" for i in range(n)][rows])),  # sorted runs
        ("week", TextColumn([f"2025-W{(i % 53) + 1:02d}" for i in range(n)][rows])),  # no runs
        ("label", TextColumn([None if i % 5 == 0 else i % 3 for i in range(n)][rows])),  # not str: written as str(v)
        ("value", NumberColumn(floats[rows])),
        ("lt_weeks", NumberColumn(lt_weeks[rows], as_int=True)),
        ("qty", NumberColumn(integral[rows], as_int=as_int[rows])),  # int or float per row
        ("count", NumberColumn(counts[rows], as_int=True)),
    ])


@pytest.mark.parametrize("rows", [0, 1, 2, 9, 1000])
@pytest.mark.parametrize("chunk_rows", [1, 4, 4096])
def test_record_tables_are_written_as_json_dumps_writes_their_rows(rows, chunk_rows, monkeypatch):
    monkeypatch.setattr(json_writer, "CHUNK_ROWS", chunk_rows)
    table = _table(rows)
    document = {"schema_version": "agg-1.0", "note": "ライト", "inputs_summary": {"rows": rows, "eps": 1e-05},
                "rows": table, "tail": [], "summary": None}
    expected = _json_bytes(materialize(document))
    assert b"".join(document_chunks(document)) == expected
    # the row dicts keep the previous types: ints where asked, floats otherwise
    listed = table.to_list()
    assert len(listed) == rows == len(table)
    if rows:
        assert type(listed[0]["lt_weeks"]) is int and type(listed[0]["value"]) is float
        assert {type(r["qty"]) for r in listed} <= {int, float}
        assert listed[0]["label"] == "None"


@pytest.mark.parametrize("bounds", [
    [(0, 1000)], [(0, 1), (1, 2), (2, 1000)], [(0, 0), (0, 500), (500, 500), (500, 1000), (1000, 1000)],
    [(0, 333), (333, 666), (666, 999), (999, 1000)],
], ids=["one", "tiny-first", "empty-between", "last-of-one"])
def test_a_record_stream_writes_its_tables_as_one_array(bounds, monkeypatch):
    """The reference export writes a level slice by slice: the bytes are those of the whole table."""
    monkeypatch.setattr(json_writer, "CHUNK_ROWS", 64)
    built: list[tuple[int, int]] = []

    def tables():
        for start, stop in bounds:
            built.append((start, stop))
            yield _table(1000, start, stop)

    stream = RecordStream(1000, tables)
    document = {"note": "x", "rows": stream, "tail": [1]}
    expected = _json_bytes(materialize({"note": "x", "rows": _table(1000), "tail": [1]}))
    assert b"".join(document_chunks(document)) == expected
    assert built == bounds  # each table built once, in order, while written
    assert len(stream) == 1000
    assert _json_bytes(stream.to_list()) == _json_bytes(_table(1000).to_list())  # NaN cells: compared as text


def test_a_record_stream_whose_tables_miss_rows_is_an_error():
    with pytest.raises(ValueError, match="announced 1000 rows but its tables hold 999"):
        b"".join(document_chunks({"rows": RecordStream(1000, lambda: [_table(1000, 0, 999)])}))
    with pytest.raises(ValueError, match="announced 10 rows but its tables hold 20"):
        b"".join(document_chunks({"rows": RecordStream(10, lambda: [_table(20, 0, 10), _table(20, 10, 20)])}))
    with pytest.raises(ValueError, match="announced 0 rows but its tables hold 3"):
        b"".join(document_chunks({"rows": RecordStream(0, lambda: [_table(3)])}))
    assert b"".join(document_chunks({"rows": RecordStream(0, lambda: [])})) == b'{\n  "rows": []\n}'


def test_minus_zero_and_zero_are_kept_apart():
    table = RecordTable([("x", NumberColumn(np.array([0.0, -0.0, 0.0, -0.0])))])
    text = b"".join(table.json_chunks(0)).decode()
    assert json.loads(text) == [{"x": 0.0}] * 4
    assert text.count("-0.0") == 2


def test_write_json_document_writes_the_file(tmp_path):
    document = {"rows": _table(5000), "n": 5000}
    digest = write_json_document(tmp_path / "doc.json", document)
    data = (tmp_path / "doc.json").read_bytes()
    assert data == _json_bytes(materialize(document))
    assert digest == hashlib.sha256(data).hexdigest()
    assert b"".join(document_chunks({})) == b"{}"


def test_a_failing_document_stops_the_writer_and_raises(tmp_path):
    def chunks():
        yield b"{"
        raise RuntimeError("column broke")

    with pytest.raises(RuntimeError, match="column broke"):
        json_writer.write_chunks(tmp_path / "doc.json", chunks())
    assert (tmp_path / "doc.json").read_bytes() == b"{"


def test_an_integer_cell_that_is_not_finite_is_an_error():
    with pytest.raises(ValueError, match="lt_weeks: nan cannot be written as an integer"):
        NumberColumn(np.array([1.0, float("nan")]), as_int=True, name="lt_weeks")
    with pytest.raises(ValueError, match="qty: inf"):
        NumberColumn(np.array([1.0, float("inf")]), as_int=np.array([False, True]), name="qty")


def test_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        RecordTable([("a", TextColumn(["x"])), ("b", NumberColumn(np.array([1.0, 2.0])))])
