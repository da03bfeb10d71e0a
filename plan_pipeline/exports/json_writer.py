"""JSON documents written at disk speed, byte for byte as ``json.dumps(doc, ensure_ascii=False,
indent=2)`` writes them (the reference project's format, which the oracle tests compare).

The standard library encodes with ``indent`` in pure Python, about 1 µs per value: the reference
file set of a 2,000-SKU plan (~20 million values, ~0.5 GB) took most of a minute. Here:

* Large row arrays are a :class:`RecordTable`: named columns (numpy arrays) instead of one
  dict per row. :func:`write_json_document` writes them chunk by chunk straight from the
  columns: each column's distinct values are encoded once (``orjson``, or ``json`` for the
  values where the two differ, see below), the row texts are assembled by numpy indexing and
  one ``bytes.join`` per chunk. No dict per row is built and memory stays bounded by a chunk.
* A :class:`RecordStream` is one such array whose rows come as a sequence of ``RecordTable`` s
  built while it is written (a stored level read slice by slice): memory holds one slice.
* Everything else in a document is small and encoded by :func:`dumps`: ``orjson`` when the
  value has nothing it writes differently from ``json``, else ``json`` itself.

Where ``orjson`` and ``json`` differ (checked value by value in
``plan_pipeline_tests/exports/test_json_writer.py``): floats with ``0 < |x| < 1e-4``
(``1e-05`` vs ``0.00001``, ``1e-07`` vs ``1e-7``), NaN and infinities (``NaN`` / ``Infinity``
vs ``null``), numpy scalars, non-string keys and integers beyond 64 bits (``orjson`` refuses
them). Floats from ``1e-4`` up (``1e+16`` included) and every string are written identically
(shortest round-trip repr; ``ensure_ascii=False`` escaping). Floats outside
``1e-4 <= |x| < 1e16`` (and 0) always take the ``json`` path.
"""
from __future__ import annotations

import gc
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pandas as pd

INDENT = 2
CHUNK_ROWS = 4_096  # ~1.5 MB of text: fresh large buffers per chunk cost page faults
_SAFE_MIN, _SAFE_MAX = 1e-4, 1e16  # orjson writes floats in [_SAFE_MIN, _SAFE_MAX) as repr does


def _py_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=INDENT).encode("utf-8")


# ------------------------------------------------------------------------------ small values
def _orjson_safe(value: Any) -> bool:
    """True when orjson writes ``value`` exactly as ``json`` does (see the module doc)."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is float:
            if v != 0.0 and not (_SAFE_MIN <= abs(v) < _SAFE_MAX):
                return False  # also NaN and infinities (every comparison is False)
        elif t is int:
            if not -(2**63) <= v < 2**64:
                return False
        elif t is dict:
            if any(type(k) is not str for k in v):
                return False
            stack.extend(v.values())
        elif t is list or t is tuple:
            stack.extend(v)
        else:  # subclasses (numpy scalars, bool-likes, str enums ...): json decides
            return False
    return True


def dumps(value: Any) -> bytes:
    """``json.dumps(value, ensure_ascii=False, indent=2)`` as UTF-8 bytes, via orjson when that
    gives the same bytes."""
    if _orjson_safe(value):
        return orjson.dumps(value, option=orjson.OPT_INDENT_2)
    return _py_json(value)


# ------------------------------------------------------------------------------ columns
def float_tokens(values: np.ndarray) -> list[bytes]:
    """The JSON text of each float of ``values`` as ``json.dumps`` writes it."""
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if not len(arr):
        return []
    tokens = orjson.dumps(arr, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    with np.errstate(invalid="ignore"):
        mag = np.abs(arr)
        odd = ~((mag >= _SAFE_MIN) & (mag < _SAFE_MAX)) & (arr != 0.0)  # NaN: both False -> odd
    for i in np.flatnonzero(odd).tolist():
        tokens[i] = json.dumps(float(arr[i])).encode("ascii")
    return tokens


def int_tokens(values: np.ndarray) -> list[bytes]:
    arr = np.ascontiguousarray(values, dtype=np.int64)
    return orjson.dumps(arr, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",") if len(arr) else []


def _checked_ints(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{what}: {float(values[~finite][0])!r} cannot be written as an integer")
    return values.astype(np.int64)  # truncation toward zero, as int(float) does


class Column:
    """One column of a :class:`RecordTable`."""

    _encoded: tuple[np.ndarray, list[bytes]] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def values(self) -> list[Any]:
        """The Python values (``str`` / ``int`` / ``float``) a row dict holds."""
        raise NotImplementedError

    def encoded(self) -> tuple[np.ndarray, list[bytes]]:
        """``(codes, texts)``: the JSON text of row ``i`` is ``texts[codes[i]]`` (each distinct
        value encoded once; computed on first use)."""
        if self._encoded is None:
            self._encoded = self._encode()
        return self._encoded

    def _encode(self) -> tuple[np.ndarray, list[bytes]]:
        raise NotImplementedError


class TextColumn(Column):
    """Strings (a value that is not a ``str`` is written as ``str(value)``)."""

    def __init__(self, values: Sequence[Any] | np.ndarray | pd.Series):
        arr = np.asarray(values, dtype=object)
        if len(arr) and pd.api.types.infer_dtype(arr, skipna=False) != "string":
            texts = np.empty(len(arr), dtype=object)
            texts[:] = [v if type(v) is str else str(v) for v in arr.tolist()]
            arr = texts
        self._values = arr

    def __len__(self) -> int:
        return len(self._values)

    def values(self) -> list[Any]:
        return self._values.tolist()

    def _encode(self) -> tuple[np.ndarray, list[bytes]]:
        arr = self._values
        if not len(arr):
            return np.zeros(0, dtype=np.intp), []
        starts = np.ones(len(arr), dtype=bool)
        starts[1:] = arr[1:] != arr[:-1]  # keys come sorted: look up one value per run only
        heads = arr[starts].tolist()
        # a dict, not pd.factorize: its string hash table cuts texts at a NUL
        index = {text: i for i, text in enumerate(dict.fromkeys(heads))}
        run_codes = np.fromiter(map(index.__getitem__, heads), dtype=np.intp, count=len(heads))
        return run_codes[np.cumsum(starts) - 1], [_string_token(u) for u in index]


def _string_token(text: str) -> bytes:
    try:
        return orjson.dumps(text)  # escapes exactly as json.dumps(ensure_ascii=False) does
    except orjson.JSONEncodeError:  # a lone surrogate: json writes it (and encoding it fails)
        return json.dumps(text, ensure_ascii=False).encode("utf-8")


class NumberColumn(Column):
    """Numbers written as floats, or as ints where ``as_int`` (a bool, or a bool per row) says so
    (an int is the float truncated toward zero; NaN or infinity there is an error)."""

    def __init__(self, values: np.ndarray | pd.Series, as_int: bool | np.ndarray = False, name: str = "value"):
        arr = np.asarray(values)
        self._mask: np.ndarray | None = None
        self._floats: np.ndarray | None = None
        self._ints: np.ndarray | None = None
        if as_int is True:
            self._ints = _checked_ints(arr, name)
            return
        self._floats = arr.astype(np.float64)
        if as_int is not False:
            mask = np.asarray(as_int, dtype=bool)
            if mask.shape != self._floats.shape:
                raise ValueError(f"{name}: as_int mask has {mask.shape} rows, values {self._floats.shape}")
            if mask.any():
                self._mask = mask
                self._ints = _checked_ints(self._floats[mask], name)

    def __len__(self) -> int:
        return len(self._floats) if self._floats is not None else len(self._ints)  # type: ignore[arg-type]

    def values(self) -> list[Any]:
        if self._floats is None:
            return self._ints.tolist()  # type: ignore[union-attr]
        if self._mask is None:
            return self._floats.tolist()
        out = np.empty(len(self._floats), dtype=object)
        out[:] = self._floats.tolist()
        out[self._mask] = self._ints.tolist()  # type: ignore[union-attr]
        return out.tolist()

    def _encode(self) -> tuple[np.ndarray, list[bytes]]:
        if self._floats is None:
            return _distinct(self._ints, int_tokens)  # type: ignore[arg-type]
        codes, texts = _distinct(self._floats, float_tokens)
        if self._mask is not None:
            int_codes, int_texts = _distinct(self._ints, int_tokens)  # type: ignore[arg-type]
            codes = codes.copy()
            codes[self._mask] = int_codes + len(texts)
            texts = texts + int_texts
        return codes, texts


def _distinct(values: np.ndarray, encode) -> tuple[np.ndarray, list[bytes]]:
    """Codes and texts of the distinct values (by their bits: ``-0.0`` and ``0.0`` stay apart)."""
    codes, uniques = pd.factorize(values.view(np.int64))
    return codes, encode(uniques.view(values.dtype))


class RecordTable:
    """Rows with the same keys in the same order, held as columns: ``to_list()`` gives the list
    of row dicts, :func:`write_json_document` writes the same JSON without building it."""

    def __init__(self, columns: Sequence[tuple[str, Column]]):
        if not columns:
            raise ValueError("a RecordTable needs at least one column")
        lengths = {len(c) for _, c in columns}
        if len(lengths) != 1:
            raise ValueError(f"RecordTable columns differ in length: {sorted(lengths)}")
        self.columns = list(columns)
        self._rows = lengths.pop()

    def __len__(self) -> int:
        return self._rows

    def to_list(self) -> list[dict[str, Any]]:
        names = [name for name, _ in self.columns]
        cols = [c.values() for _, c in self.columns]
        enabled = gc.isenabled()
        gc.disable()  # hundreds of thousands of small dicts: skip pointless generational collections
        try:
            return [dict(zip(names, vals)) for vals in zip(*cols)]
        finally:
            if enabled:
                gc.enable()

    def json_chunks(self, depth: int, chunk_rows: int | None = None) -> Iterator[bytes]:
        """The JSON array of the rows as ``json.dumps(indent=2)`` writes it at nesting ``depth``
        (the array is a value inside ``depth`` containers), in chunks of ``chunk_rows`` rows."""
        if not self._rows:
            yield b"[]"
            return
        yield b"[" + _row_pad(depth)
        yield from self.row_chunks(depth, last=True, chunk_rows=chunk_rows)
        yield b"\n" + b" " * (INDENT * depth) + b"]"

    def row_chunks(self, depth: int, *, last: bool, chunk_rows: int | None = None) -> Iterator[bytes]:
        """The rows of the array :meth:`json_chunks` writes, without its brackets: each row
        followed by ``,`` and the next row's indent, except the final row when ``last`` (the rows of
        one array may so come from several tables, see :class:`RecordStream`)."""
        if not self._rows:
            return
        row_pad = _row_pad(depth)
        key_pad = b"\n" + b" " * (INDENT * (depth + 2))
        prefixes = [(b"{" if j == 0 else b",") + key_pad + json.dumps(name, ensure_ascii=False).encode("utf-8") + b": "
                    for j, (name, _) in enumerate(self.columns)]
        end_of_row = row_pad + b"},"
        k = len(self.columns)
        tables = []
        for prefix, (_, column) in zip(prefixes, self.columns):
            codes, texts = column.encoded()
            prefixed = np.empty(len(texts), dtype=object)
            prefixed[:] = [prefix + t for t in texts]
            tables.append((codes, prefixed))
        chunk_rows = chunk_rows or CHUNK_ROWS
        for start in range(0, self._rows, chunk_rows):
            stop = min(start + chunk_rows, self._rows)
            parts = np.empty((stop - start, k + 1), dtype=object)
            for j, (codes, table) in enumerate(tables):
                parts[:, j] = table[codes[start:stop]]
            parts[:, k] = end_of_row + row_pad  # "}," and the next row's indent
            if last and stop == self._rows:
                parts[-1, k] = row_pad + b"}"
            yield b"".join(parts.ravel().tolist())


def _row_pad(depth: int) -> bytes:
    return b"\n" + b" " * (INDENT * (depth + 1))


class RecordStream:
    """The rows of one JSON array coming as a sequence of :class:`RecordTable` s (same columns),
    built one at a time while the array is written: a document of a large plan level holds one
    slice of the level at a time, not the level. ``rows`` is the array's length, known before
    the tables are built (the stored level's row count); writing checks it.

    ``tables`` is called once per use (writing, or :meth:`to_list`) and gives the tables in order.
    """

    def __init__(self, rows: int, tables: Callable[[], Iterable[RecordTable]]):
        self._rows = int(rows)
        self._tables = tables

    def __len__(self) -> int:
        return self._rows

    def to_list(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for table in self._tables():
            out.extend(table.to_list())
        self._check(len(out))
        return out

    def json_chunks(self, depth: int, chunk_rows: int | None = None) -> Iterator[bytes]:
        """As :meth:`RecordTable.json_chunks` writes the rows of all the tables as one table."""
        if not self._rows:
            self._check(sum(len(table) for table in self._tables()))
            yield b"[]"
            return
        yield b"[" + _row_pad(depth)
        written = 0
        for table in self._tables():
            if not len(table):
                continue
            written += len(table)
            if written > self._rows:
                self._check(written)
            yield from table.row_chunks(depth, last=written == self._rows, chunk_rows=chunk_rows)
        self._check(written)
        yield b"\n" + b" " * (INDENT * depth) + b"]"

    def _check(self, rows: int) -> None:
        if rows != self._rows:
            raise ValueError(f"a record stream announced {self._rows} rows but its tables hold {rows}")


# ------------------------------------------------------------------------------ documents
def document_chunks(document: dict[str, Any]) -> Iterator[bytes]:
    """``json.dumps(document, ensure_ascii=False, indent=2)`` as UTF-8 chunks, with any
    :class:`RecordTable` or :class:`RecordStream` value of ``document`` written as the list of its rows."""
    if not document:
        yield b"{}"
        return
    pad = b"\n" + b" " * INDENT
    for i, (key, value) in enumerate(document.items()):
        if type(key) is not str:
            raise TypeError(f"document keys must be str, not {type(key).__name__}")
        yield (b"{" if i == 0 else b",") + pad + json.dumps(key, ensure_ascii=False).encode("utf-8") + b": "
        if isinstance(value, (RecordTable, RecordStream)):
            yield from value.json_chunks(depth=1)
        else:
            yield dumps(value).replace(b"\n", pad)  # JSON text holds no raw newline but its own
    yield b"\n}"


def write_json_document(path: Path, document: dict[str, Any]) -> str:
    """Write ``document`` (see :func:`document_chunks`) to ``path``; returns its sha256 (hex)."""
    return write_chunks(path, document_chunks(document))


def write_chunks(path: Path, chunks: Iterable[bytes]) -> str:
    """Write ``chunks`` to ``path`` and return the file's sha256 (hex). A second thread hashes
    and writes (both release the GIL) while this one builds the next chunk."""
    digest = hashlib.sha256()
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    failed: list[BaseException] = []

    def drain(handle: BinaryIO) -> None:
        while (chunk := pending.get()) is not None:
            if not failed:
                try:
                    digest.update(chunk)
                    handle.write(chunk)
                except BaseException as exc:  # reported by the producer below
                    failed.append(exc)

    with open(path, "wb") as handle:
        writer = threading.Thread(target=drain, args=(handle,), name="json-writer", daemon=True)
        writer.start()
        try:
            for chunk in chunks:
                if failed:
                    break
                pending.put(chunk)
        finally:
            pending.put(None)
            writer.join()
    if failed:
        raise failed[0]
    return digest.hexdigest()


def materialize(document: Any) -> Any:
    """``document`` with every :class:`RecordTable` replaced by its list of row dicts."""
    if isinstance(document, (RecordTable, RecordStream)):
        return document.to_list()
    if isinstance(document, dict):
        return {k: materialize(v) for k, v in document.items()}
    return document


__all__ = [
    "Column",
    "NumberColumn",
    "RecordStream",
    "RecordTable",
    "TextColumn",
    "document_chunks",
    "dumps",
    "float_tokens",
    "int_tokens",
    "materialize",
    "write_json_document",
]
