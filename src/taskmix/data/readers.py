"""Reading text tables: JSONL, JSON, CSV, TSV and Parquet files through Hugging Face ``datasets``, or a hub split.

Every problem is a one-line :class:`taskmix.errors.DataError` naming the file
and line (JSONL, CSV, TSV) or row (JSON arrays, Parquet, the hub).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import ConfigError, DataError, first_line

__all__ = ["EXTENSIONS", "TEXT_FORMATS", "RawTable", "infer_format", "load_hub", "read_text_file"]

TEXT_FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FORMAT_EXTENSIONS = {
    "jsonl": (".jsonl", ".ndjson"),
    "json": (".json",),
    "csv": (".csv",),
    "tsv": (".tsv",),
    "parquet": (".parquet", ".pq"),
}
SEARCH_ORDER = (".jsonl", ".json", ".parquet", ".csv", ".tsv")



@dataclass
class RawTable:
    """Columns read from one file or hub split, with each row's line for error messages.

    ``lines[i]`` is the 1-based line on which row ``i`` starts (JSONL, CSV,
    TSV); ``None`` where rows have no line (JSON arrays, Parquet, the hub).
    """

    source: str
    columns: dict[str, list[Any]]
    lines: list[int] | None = None

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def column_names(self) -> list[str]:
        """The table's column names."""
        return list(self.columns)

    def where(self, row: int) -> str:
        """``file:line`` (or ``source: row N``, 1-based) of row ``row``."""
        if self.lines is not None:
            return f"{self.source}:{self.lines[row]}"
        return f"{self.source}: row {row + 1}"


def _cut(text: Any, limit: int = 24) -> str:
    """At most ``limit`` characters of a value read from a file, for a message."""
    t = str(text)
    return t if len(t) <= limit else t[: limit - 3] + "..."


def _names(names: Sequence[Any], n: int = 8) -> str:
    """Column names for a message: at most ``n``, each cut short."""
    shown = ", ".join(_cut(c) for c in list(names)[:n])
    return shown + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def infer_format(path: Path, fmt: str = "auto") -> str:
    """``fmt``, or the format the file extension implies when ``fmt`` is ``auto``."""
    if fmt != "auto":
        if fmt not in TEXT_FORMATS:
            raise ConfigError(f"{path}: format {fmt!r} is not a text format; expected one of {', '.join(TEXT_FORMATS)}")
        return fmt
    ext = path.suffix.lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if ext == ".npz":
        raise ConfigError(f"{path}: an .npz file is a feature file, not text; do not combine it with a text preset")
    raise DataError(
        f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
        f"expected one of {', '.join(sorted(EXTENSIONS))} or set format: {'|'.join(TEXT_FORMATS)}"
    )


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide ``datasets``' progress bars for the duration (restored afterwards)."""
    import datasets

    was = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was:
            datasets.enable_progress_bars()


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Decoded lines with their 1-based numbers; :class:`DataError` naming the line on bad UTF-8."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{lineno}: not UTF-8 text ({e.reason} at byte {e.start} of the line)") from None


def _check_jsonl(path: Path) -> list[int]:
    """Validate JSON Lines one line at a time; the line number of every row."""
    lines: list[int] = []
    for lineno, line in _read_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno}); expected one JSON object per line"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object per line, got a JSON {_json_type(obj)}")
        lines.append(lineno)
    return lines


def _json_type(obj: Any) -> str:
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, bool):
        return "boolean"
    if isinstance(obj, (int, float)):
        return "number"
    return "null" if obj is None else type(obj).__name__


def _check_json(path: Path) -> list[int] | None:
    """A ``.json`` file is JSON Lines (first character ``{``) or one array of objects."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if not head or head.startswith(b"{"):
        return _check_jsonl(path)
    if not head.startswith(b"["):
        raise DataError(f"{path}:1: expected JSON Lines (one object per line) or a JSON array of objects")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not doc:
        raise DataError(f"{path}: empty split (an empty JSON array)")
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            raise DataError(f"{path}: item {i + 1} of the array is a JSON {_json_type(item)}; expected an object per row")
    return None


def _check_parquet(path: Path) -> None:
    """A readable Parquet file with at least one row (``datasets`` fails obscurely on zero rows)."""
    import pyarrow.parquet as pq

    try:
        n = pq.ParquetFile(path).metadata.num_rows
    except Exception as e:  # ArrowInvalid, OSError
        raise DataError(f"{path}: could not be read as parquet ({first_line(e)})") from None
    if n == 0:
        raise DataError(f"{path}: empty split (no rows)")


def _csv_dialect(fmt: str) -> dict[str, Any]:
    # TSV follows the GLUE convention: fields are never quoted, quote characters are literal text.
    if fmt == "tsv":
        return {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    return {"delimiter": ",", "quoting": csv.QUOTE_MINIMAL}


def _check_csv(path: Path, fmt: str) -> tuple[list[str], list[int]]:
    """Validate a CSV / TSV file record by record: the header and each row's starting line."""
    dialect = _csv_dialect(fmt)
    kind = "tab-separated" if fmt == "tsv" else "comma-separated"
    header: list[str] | None = None
    lines: list[int] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True, **dialect)
            prev = 0
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    raise DataError(f"{path}:{reader.line_num}: malformed {kind} line ({e})") from None
                start, prev = prev + 1, reader.line_num
                if not record:  # blank line
                    continue
                if header is None:
                    header = record
                    dup = sorted({c for c in header if header.count(c) > 1})
                    if dup:
                        raise DataError(f"{path}:{start}: duplicate column name(s) {[_cut(c) for c in dup[:8]]} in the header")
                    continue
                if len(record) != len(header):
                    raise DataError(
                        f"{path}:{start}: expected {len(header)} {kind} fields ({_names(header)}), found {len(record)}"
                    )
                lines.append(start)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if header is None:
        raise DataError(f"{path}: empty split (no header line and no rows)")
    return header, lines


def read_text_file(path: str | os.PathLike, fmt: str = "auto", columns: Sequence[str] | None = None) -> RawTable:
    """Read a JSONL / JSON / CSV / TSV / Parquet file through ``datasets.load_dataset``.

    The file is checked first (JSON syntax line by line, CSV field counts
    record by record), so that a malformed line is reported with its number.
    CSV / TSV cells are read as literal strings (no ``NA`` guessing, digits
    stay text); labels are converted later by :class:`LabelMap`.

    Args:
        path: the file.
        fmt: a format from :data:`TEXT_FORMATS`, or ``auto`` (from the extension).
        columns: the columns to return (all when ``None``); all must exist.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a data file")
    fmt = infer_format(path, fmt)
    lines: list[int] | None = None
    builder, kwargs = fmt, {}
    if fmt == "jsonl":
        lines = _check_jsonl(path)
        builder = "json"
    elif fmt == "json":
        lines = _check_json(path)
    elif fmt in ("csv", "tsv"):
        from datasets import Features, Value

        header, lines = _check_csv(path, fmt)
        builder = "csv"
        kwargs = {
            **_csv_dialect(fmt),
            "na_filter": False,
            "features": Features({c: Value("string") for c in header}),
        }
    elif fmt == "parquet":
        _check_parquet(path)
    if lines is not None and not lines:
        raise DataError(f"{path}: empty split (no rows)")

    import datasets

    try:
        with _quiet_datasets():
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as e:  # datasets wraps parser errors in DatasetGenerationError
        cause = e.__cause__ or e.__context__ or e
        raise DataError(f"{path}: could not be read as {fmt} ({first_line(cause)})") from None
    if len(ds) == 0:
        raise DataError(f"{path}: empty split (no rows)")
    if lines is not None and len(lines) != len(ds):  # parsers disagree: fall back to row numbers
        lines = None
    return _table_from_dataset(ds, str(path), columns, lines)


def _table_from_dataset(ds: Any, source: str, columns: Sequence[str] | None, lines: list[int] | None) -> RawTable:
    available = list(ds.column_names)
    wanted = list(columns) if columns is not None else available
    missing = [c for c in wanted if c not in available]
    if missing:
        raise DataError(f"{source}: no column {_cut(missing[0])!r}; available columns: {_names(available)}")
    sub = ds.select_columns(wanted)
    return RawTable(source, {c: list(v) for c, v in sub.to_dict().items()}, lines)


def load_hub(hub_path: str, hub_config: str, split: str, columns: Sequence[str]) -> RawTable:
    """One split of a hub dataset (``datasets.load_dataset(hub_path, hub_config, split=split)``)."""
    import datasets

    source = f"{hub_path}[{hub_config}] split {split!r}"
    try:
        with _quiet_datasets():
            ds = datasets.load_dataset(hub_path, hub_config, split=split)
    except Exception as e:
        raise DataError(
            f"{source}: could not be loaded from the Hugging Face hub ({type(e).__name__}: {first_line(e)}); "
            "set data_dir to a local copy or give the split files"
        ) from None
    if len(ds) == 0:
        raise DataError(f"{source}: empty split (no rows)")
    return _table_from_dataset(ds, source, columns, None)
