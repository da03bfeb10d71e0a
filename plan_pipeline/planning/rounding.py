"""Rounding helpers (spec §4): banker's rounding, exact ``round6`` and integer apportionment.

* :func:`round_half_even` reproduces Python's correctly rounded ``round(x, n)`` on whole
  arrays (``np.round(x, n)`` scales by ``10**n`` first and can differ in the last place).
* :func:`distribute_int` / :func:`distribute_int_grouped` implement the reference
  apportionment (§4.2): the whole remainder goes to the highest-fraction element up to
  its cap, overflow to the next; deficits come off the lowest-fraction elements first;
  ties keep index order.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "decimals_of",
    "distribute_int",
    "distribute_int_grouped",
    "group_ranks",
    "round6",
    "round_half_even",
    "round_quantity",
    "round_quantity_array",
    "sequential_group_sum",
]

_SPLITTER = 134217729.0  # 2**27 + 1 (Dekker split)
# Above this magnitude of x * 10**n the fast path is not exact; use Python's round per element.
_FAST_LIMIT = 2.0**50


def decimals_of(mode: str) -> int | None:
    """Number of decimals of a round mode: ``None`` for ``int``, 6 for ``none``/unknown."""
    if mode == "int":
        return None
    if isinstance(mode, str) and mode.startswith("dec"):
        try:
            n = int(mode[3:])
        except ValueError:
            n = 2
        return max(0, n)
    return 6


def round_half_even(values: Any, ndigits: int = 0) -> np.ndarray:
    """Vectorised ``round(x, ndigits)`` with Python semantics (correctly rounded, half-even).

    The product ``x * 10**n`` is formed exactly as ``p + err`` (Dekker two-product); the
    integer ``k`` nearest to the exact product is then ``rint(p)`` corrected only when ``p``
    is exactly a half-integer, and the result is the double nearest to ``k / 10**n``.
    """
    x = np.asarray(values, dtype=np.float64)
    if ndigits == 0:
        return np.rint(x)
    if ndigits < 0 or ndigits > 22:
        return np.vectorize(lambda v: round(float(v), ndigits), otypes=[np.float64])(x)
    # Whole numbers (and infinities) round to themselves: with integer plans most values are,
    # so only the fractional ones go through the exact path below.
    with np.errstate(invalid="ignore"):
        fractional = x != np.floor(x)  # NaN counts as fractional (kept by the exact path)
    n_fractional = int(np.count_nonzero(fractional))
    if n_fractional == 0:
        return np.array(x, dtype=np.float64, copy=True)
    if n_fractional * 2 < x.size:
        out = np.array(x, dtype=np.float64, copy=True)
        out[fractional] = _round_half_even_exact(x[fractional], ndigits)
        return out
    return _round_half_even_exact(x, ndigits)


def _round_half_even_exact(x: np.ndarray, ndigits: int) -> np.ndarray:
    scale = float(10**ndigits)
    with np.errstate(over="ignore", invalid="ignore"):
        p = x * scale
        c = _SPLITTER * x
        hi = c - (c - x)
        lo = x - hi
        if ndigits <= 15:  # scale fits in 26 bits or is split-free enough: exact pieces
            s_hi = _SPLITTER * scale
            s_hi = s_hi - (s_hi - scale)
            s_lo = scale - s_hi
            err = ((hi * s_hi - p) + hi * s_lo + lo * s_hi) + lo * s_lo
        else:  # pragma: no cover - not used by the pipeline
            err = np.zeros_like(p)
        k = np.rint(p)
        d = p - k
        k = np.where((d == 0.5) & (err > 0), k + 1.0, k)
        k = np.where((d == -0.5) & (err < 0), k - 1.0, k)
        out = k / scale
    slow = ~(np.abs(p) < _FAST_LIMIT)  # includes nan/inf and huge values
    if slow.any():
        out = np.array(out, dtype=np.float64, copy=True)
        idx = np.flatnonzero(slow.ravel())
        flat_x = x.ravel()
        flat_out = out.reshape(-1)
        for i in idx:
            v = float(flat_x[i])
            flat_out[i] = round(v, ndigits) if math.isfinite(v) else v
    return out


def round6(values: Any) -> Any:
    """``round(float(x), 6)``: scalar in, Python float out; array in, float64 array out."""
    if np.ndim(values) == 0 and not isinstance(values, np.ndarray):
        return round(float(values), 6)
    return round_half_even(values, 6)


def _to_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def round_quantity(value: Any, mode: str) -> Any:
    """§4.1 ``round_quantity``: ``int`` mode gives a Python ``int`` (banker's rounding).

    Arrays/Series are rounded element-wise by :func:`round_quantity_array` (floats, also in
    ``int`` mode).
    """
    if isinstance(value, (np.ndarray, list, tuple)) or hasattr(value, "to_numpy"):
        return round_quantity_array(value, mode)
    v = _to_float(value)
    n = decimals_of(mode)
    if n is None:
        return int(round(v))
    return round(v, n)


def round_quantity_array(values: Any, mode: str) -> np.ndarray:
    """Vectorised :func:`round_quantity`; returns float64 (integral values in ``int`` mode)."""
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    x = np.asarray(values, dtype=np.float64)
    n = decimals_of(mode)
    if n is None:
        return np.rint(x)
    return round_half_even(x, n)


# --------------------------------------------------------------------------- apportionment


def distribute_int(values: Sequence[float], target: float, caps: Sequence[float] | None = None) -> list[int]:
    """Scalar reference version of §4.2 (kept simple; used to cross-check the vector one)."""
    n = len(values)
    if n == 0:
        return []
    total = max(0, int(round(target)))
    cap = [total] * n if caps is None else [max(0, int(round(c))) for c in caps]
    pos = [max(0.0, float(v)) for v in values]
    base = [min(int(math.floor(p)), c) for p, c in zip(pos, cap)]
    frac = [p - math.floor(p) for p in pos]
    diff = total - sum(base)
    if diff > 0:
        for i in sorted(range(n), key=lambda j: frac[j], reverse=True):
            room = cap[i] - base[i]
            if room <= 0:
                continue
            take = min(room, diff)
            base[i] += take
            diff -= take
            if diff == 0:
                break
    elif diff < 0:
        for i in sorted(range(n), key=lambda j: frac[j]):
            while diff < 0 and base[i] > 0:
                base[i] -= 1
                diff += 1
            if diff == 0:
                break
    return base


def _greedy_take(order: np.ndarray, gid_sorted: np.ndarray, room_sorted: np.ndarray, need: np.ndarray) -> np.ndarray:
    """For elements already sorted by group then priority: ``min(room, need left)`` greedily."""
    cum = np.cumsum(room_sorted)
    n = len(order)
    starts = np.flatnonzero(np.r_[True, gid_sorted[1:] != gid_sorted[:-1]]) if n else np.empty(0, np.int64)
    start_of = np.repeat(starts, np.diff(np.r_[starts, n]))
    before = cum - room_sorted - (cum[start_of] - room_sorted[start_of])
    return np.clip(need[gid_sorted] - before, 0.0, room_sorted)


def distribute_int_grouped(
    values: Any,
    targets: Any,
    group_ids: Any,
    caps: Any | None = None,
) -> np.ndarray:
    """Apportion many groups at once (§4.2), over flat arrays.

    ``values[i]`` belongs to group ``group_ids[i]`` (integers ``0..G-1``; rows of a group need
    not be contiguous; "index order" is the order inside ``values``); ``targets[g]`` is the
    group's target; ``caps[i]`` the optional per-element cap (``None`` => the group target).
    Returns float64 integral values.
    """
    v = np.asarray(values, dtype=np.float64)
    gid = np.asarray(group_ids, dtype=np.int64)
    tgt = np.maximum(0.0, np.rint(np.asarray(targets, dtype=np.float64)))
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    if caps is None:
        cap = tgt[gid]
    else:
        cap = np.maximum(0.0, np.rint(np.asarray(caps, dtype=np.float64)))
    pos = np.maximum(0.0, v)
    fl = np.floor(pos)
    frac = pos - fl
    base = np.minimum(fl, cap)
    sums = np.bincount(gid, weights=base, minlength=len(tgt))
    diff = tgt - sums
    out = base.copy()
    idx = np.arange(n)
    up = diff[gid] > 0
    if up.any():
        sel = idx[up]
        order = sel[np.lexsort((sel, -frac[sel], gid[sel]))]
        room = np.maximum(0.0, cap[order] - base[order])
        out[order] += _greedy_take(order, gid[order], room, np.maximum(diff, 0.0))
    down = diff[gid] < 0
    if down.any():
        sel = idx[down]
        order = sel[np.lexsort((sel, frac[sel], gid[sel]))]
        room = np.maximum(0.0, base[order])
        out[order] -= _greedy_take(order, gid[order], room, np.maximum(-diff, 0.0))
    return out


# --------------------------------------------------------------------------- exact summation


def group_ranks(group_ids: Any) -> np.ndarray:
    """Occurrence number (0, 1, …) of each element inside its group, in array order."""
    gid = np.asarray(group_ids, dtype=np.int64)
    n = len(gid)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(gid, kind="stable")
    gs = gid[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    start_of = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - start_of
    return rank


def sequential_group_sum(values: Any, group_ids: Any, n_groups: int) -> np.ndarray:
    """Per-group sums added strictly left to right in array order (``0.0 + a + b + …``).

    Matches a Python loop ``acc[g] = acc.get(g, 0.0) + v`` bit for bit (numpy's pairwise
    summation and pandas' compensated group sums do not).
    """
    v = np.asarray(values, dtype=np.float64)
    gid = np.asarray(group_ids, dtype=np.int64)
    acc = np.zeros(n_groups, dtype=np.float64)
    if len(v) == 0:
        return acc
    rank = group_ranks(gid)
    by_rank = np.argsort(rank, kind="stable")
    counts = np.bincount(rank)
    pos = 0
    for c in counts:
        sel = by_rank[pos:pos + c]
        acc[gid[sel]] += v[sel]
        pos += c
    return acc
