"""How every command prints a table: readable at 80 columns, names whole, or CSV / JSON for scripts.

`print_table` never breaks a number or a name across lines (a wrapped "0.83" / "3" or "tiny" / "-ce-" cannot be
read back or copied). It tries, in order: one table with every cell on one line; the same table with a
`group` column (say the checkpoint) lifted out as a heading line above its rows; and, when that is still
wider than the console, a vertical layout (one block per row, one "header  value" line per cell). A legend
under the table explains abbreviated headers. `--format csv|json` (`format_option`) prints the rows' raw
values instead, with the same column names as the files the command writes (docs/conventions.md).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from mdlm_probe.core.exceptions import BadInput

FORMATS = ("table", "csv", "json")


def format_option() -> Any:
    return typer.Option("table", "--format", help="table (for people; fits the terminal, names whole), csv or "
                        "json (for scripts: raw values on stdout, notes on stderr).")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt!r}: expected table, csv or json")
    return fmt


@dataclass
class Col:
    """A table column: its header, the row key it shows, how a value is written, and its alignment."""
    header: str
    key: str
    fmt: Callable[[Any], str] = str
    justify: str = "left"

    def cell(self, row: dict[str, Any]) -> str:
        v = row.get(self.key)
        return "" if v is None else self.fmt(v) if not isinstance(v, str) else v


def _table(cols: Sequence[Col], rows: Iterable[dict[str, Any]]) -> Table:
    t = Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True, show_edge=False)
    for c in cols:
        t.add_column(Text(c.header), justify=c.justify, no_wrap=True, overflow="ignore")
    for r in rows:
        t.add_row(*(Text(c.cell(r)) for c in cols))  # Text: a "[...]" in a name is not read as markup
    return t


def _width(console: Console, table: Table) -> int:
    """The table's natural width (measured without the console's limit, which would cap it)."""
    return Measurement.get(console, console.options.update_width(1 << 16), table).maximum


def print_table(console: Console, title: str, cols: Sequence[Col], rows: Sequence[dict[str, Any]], *,
                fmt: str = "table", group: str | None = None, legend: str | None = None,
                records: Sequence[dict[str, Any]] | None = None) -> None:
    """Print `rows` as `fmt`. csv/json print `records` (default: `rows` restricted to the columns' keys)."""
    if fmt != "table":
        print_records(records if records is not None else [{c.key: r.get(c.key) for c in cols} for r in rows], fmt)
        return
    console.print(title, markup=False, highlight=False, soft_wrap=True)
    width = console.width
    t = _table(cols, rows)
    if _width(console, t) <= width:
        console.print(t, highlight=False)
    elif group is not None and _fits_grouped(console, cols, rows, group, width):
        inner = [c for c in cols if c.key != group]
        for value in dict.fromkeys(r.get(group) for r in rows):
            console.print(f"{_header(cols, group)}: {value}", style="bold", markup=False, highlight=False,
                          soft_wrap=True)
            console.print(_table(inner, [r for r in rows if r.get(group) == value]), highlight=False)
    else:
        _vertical(console, cols, rows)
    if legend:
        console.print(legend, style="dim", markup=False, highlight=False)


def _header(cols: Sequence[Col], key: str) -> str:
    return next(c.header for c in cols if c.key == key)


def _fits_grouped(console: Console, cols: Sequence[Col], rows: Sequence[dict[str, Any]], group: str, width: int) -> bool:
    return _width(console, _table([c for c in cols if c.key != group], rows)) <= width


def _vertical(console: Console, cols: Sequence[Col], rows: Sequence[dict[str, Any]]) -> None:
    """One block per row: the first column's value as its heading, then `header  value` lines (never wrapped:
    a long value runs on and the terminal folds it, so a copy gives it whole)."""
    pad = max(len(c.header) for c in cols[1:]) if len(cols) > 1 else 0
    for r in rows:
        console.print(cols[0].cell(r), style="bold", markup=False, highlight=False, soft_wrap=True)
        for c in cols[1:]:
            console.print(f"  {c.header:<{pad}}  {c.cell(r)}", markup=False, highlight=False, soft_wrap=True)


def _plain(v: Any) -> Any:
    """JSON-ready: NaN as null (JSON has no NaN), containers as they are."""
    return None if isinstance(v, float) and math.isnan(v) else v


def print_records(records: Sequence[dict[str, Any]], fmt: str) -> None:
    """Rows on stdout as CSV (header: the union of the keys, in order) or a JSON list, nothing else."""
    if fmt == "json":
        print_json(list(records))
        return
    keys = list(dict.fromkeys(k for r in records for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else ("" if v is None else v)
                    for k, v in r.items()})
    print(buf.getvalue(), end="")


def print_result(res: dict[str, Any], fmt: str, csv_rows: Callable[[dict[str, Any]], list[dict[str, Any]]],
                 table: Callable[[], None]) -> None:
    """A command's result as --format asks: json, the content of the .json file it wrote; csv, the rows of its .csv
    file (`csv_rows(res)`); table, `table()`."""
    if fmt == "json":
        print_json(res)
    elif fmt == "csv":
        print_records(csv_rows(res), "csv")
    else:
        table()


def print_json(obj: Any) -> None:
    """A whole result (compare.json, frontier.json ...) on stdout; NaN as null."""
    print(json.dumps(_nan_to_null(obj), indent=1, default=str))


def _nan_to_null(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _nan_to_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_null(v) for v in obj]
    return _plain(obj)
