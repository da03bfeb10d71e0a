"""Small helpers that copy the bundled sample and edit it into bad input folders."""
from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plan_pipeline.inputs.sample import BUNDLED_SAMPLE_DIR


def copy_sample(dst: Path) -> Path:
    shutil.copytree(BUNDLED_SAMPLE_DIR, dst)
    return dst


def read_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def set_cell(folder: Path, file: str, line: int, column: str, value: str) -> None:
    """Set one cell; ``line`` is the file line (header = 1)."""
    path = folder / file
    rows = read_rows(path)
    rows[line - 1][rows[0].index(column)] = value
    write_rows(path, rows)


def lines(folder: Path, file: str) -> list[str]:
    return (folder / file).read_text(encoding="utf-8").splitlines()


def write_lines(folder: Path, file: str, text_lines: list[str]) -> None:
    (folder / file).write_text("".join(f"{x}\n" for x in text_lines), encoding="utf-8")


def append_lines(folder: Path, file: str, *text_lines: str) -> None:
    write_lines(folder, file, lines(folder, file) + list(text_lines))


def replace_line(folder: Path, file: str, line: int, text: str) -> None:
    all_lines = lines(folder, file)
    all_lines[line - 1] = text
    write_lines(folder, file, all_lines)


def delete_lines(folder: Path, file: str, *line_numbers: int) -> None:
    drop = set(line_numbers)
    write_lines(folder, file, [x for i, x in enumerate(lines(folder, file), start=1) if i not in drop])


def edit_calendar(folder: Path, change: Callable[[dict], Any]) -> None:
    path = folder / "planning_calendar.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
