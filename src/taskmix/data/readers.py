"""Reading text tables: JSONL, JSON, CSV, TSV and Parquet files through Hugging Face ``datasets``, or a hub split.

Every problem is a one-line :class:`taskmix.errors.DataError` naming the file
and line (JSONL, CSV, TSV) or row (JSON arrays, Parquet, the hub).

Bounds: a data file must be a regular file (a FIFO, a device such as
``/dev/zero`` or a socket is refused before it is opened for reading) of at
most :data:`MAX_TEXT_DATA_BYTES`; JSONL, CSV and TSV files are checked one
line at a time, each line at most :data:`MAX_LINE_BYTES`, and no field may
hold more than :data:`MAX_TEXT_CHARS` characters.  Files must be UTF-8 (a
leading byte order mark is accepted and dropped).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence

from ..errors import ConfigError, DataError, first_line
from ..files import check_input_file, open_input_file

__all__ = [
    "EXTENSIONS",
    "MAX_LINE_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_TEXT_DATA_BYTES",
    "TEXT_FORMATS",
    "DataFileError",
    "field_too_long",
    "RawTable",
    "infer_format",
    "load_hub",
    "read_text_file",
]

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

MAX_TEXT_DATA_BYTES = 4 * 2**30
"""The largest text data file read (4 GiB).  ``datasets`` holds a whole file in
memory (and taskmix its text again, as Python strings), so a file much larger
would not fit a machine anyway; the largest GLUE / XNLI files are near 100 MB."""
MAX_LINE_BYTES = 64 * 2**20
"""The longest line of a JSONL, CSV or TSV file (64 MiB, like a config file): the
files are checked one line at a time, so memory stays bounded."""
MAX_TEXT_CHARS = 1_000_000
"""The most characters one field (a text or a label) of one example may hold.
Far above any real example (a sentence encoder or a transformer reads its first
few hundred tokens); checked before anything is tokenized, since a tokenizer
takes minutes over a 50 MB line."""


class DataFileError(DataError):
    """A data file refused for its form: missing, not a regular file, too large, not UTF-8,
    a line or field too long, no rows.  The message quotes none of the file's content,
    so it is shown even for a file outside the config's folder and ``data_dir``."""


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
    """At most ``limit`` characters of a value read from a file, for a message (control characters escaped: one line)."""
    t = str(text)
    if not t.isprintable():
        t = repr(t)[1:-1]
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
    raise DataFileError(
        f"{path}: cannot tell the format from the extension {_cut(ext) or '(none)'!r}; "
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


def _open(path: Path) -> BinaryIO:
    """``path`` opened for binary reading: a regular file of at most :data:`MAX_TEXT_DATA_BYTES` (never blocks)."""
    try:
        return open_input_file(path, "text data file", MAX_TEXT_DATA_BYTES, DataFileError)
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataFileError(f"{path}: is a directory, expected a data file") from None
    except OSError as e:
        raise DataFileError(f"{path}: cannot be read ({e.strerror or e})") from None


def _check_file(path: Path) -> None:
    """Refuse, before anything opens it, a data file that is missing, not a regular file or too large."""
    try:
        check_input_file(path, "text data file", MAX_TEXT_DATA_BYTES, DataFileError)
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataFileError(f"{path}: is a directory, expected a data file") from None


def _not_utf8(where: str, reason: str, byte: int, offset: int) -> DataFileError:
    """Bytes that are not UTF-8 at ``byte`` (0-based) of a line that starts at ``offset`` in the file."""
    return DataFileError(
        f"{where}: not UTF-8 text ({reason} at byte {byte + 1} of the line, offset {offset + byte} in the file); "
        "data files must be UTF-8: convert it (e.g. iconv -f latin1 -t utf-8)"
    )


def _lines(f: BinaryIO, path: Path) -> Iterator[tuple[int, str]]:
    """Decoded lines (ends kept) with their 1-based numbers, each at most :data:`MAX_LINE_BYTES`.

    A UTF-8 byte order mark at the start is dropped; bytes that are not UTF-8
    are a :class:`DataFileError` naming the line and the byte.
    """
    offset, lineno = 0, 0
    while True:
        raw = f.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE_BYTES:
            raise DataFileError(
                f"{path}:{lineno}: a line of more than {MAX_LINE_BYTES} bytes; expected one example per line "
                f"with at most {MAX_TEXT_CHARS} characters per field"
            )
        skip = len(codecs.BOM_UTF8) if lineno == 1 and raw.startswith(codecs.BOM_UTF8) else 0
        try:
            text = raw[skip:].decode("utf-8")
        except UnicodeDecodeError as e:
            raise _not_utf8(f"{path}:{lineno}", e.reason, e.start, offset + skip) from None
        offset += len(raw)
        yield lineno, text


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Decoded lines of a data file with their 1-based numbers (see :func:`_lines`)."""
    with _open(path) as f:
        yield from _lines(f, path)


def field_too_long(where: str, column: str, n: int) -> DataFileError:
    """The error for a field of ``n`` > :data:`MAX_TEXT_CHARS` characters in ``column`` at ``where``."""
    return DataFileError(
        f"{where}: column '{_cut(column)}' holds {n} characters, more than the {MAX_TEXT_CHARS} allowed per field; "
        "shorten or split the example"
    )


def _check_jsonl(path: Path, columns: Sequence[str] | None = None) -> list[int]:
    """Validate JSON Lines one line at a time; the line number of every row."""
    lines: list[int] = []
    for lineno, line in _read_lines(path):
        if not line.strip():
            continue
        obj = _parse_json(line, f"{path}:{lineno}", "; expected one JSON object per line")
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object per line, got a JSON {_json_type(obj)}")
        for c in columns or ():
            v = obj.get(c)
            if isinstance(v, str) and len(v) > MAX_TEXT_CHARS:
                raise field_too_long(f"{path}:{lineno}", c, len(v))
        lines.append(lineno)
    return lines


def _parse_json(text: str, where: str, expected: str = "", document: bool = False) -> Any:
    """``json.loads(text)``; a :class:`DataError` naming ``where`` (and the line, for a ``document``) when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = f"{where}:{e.lineno}" if document else where
        raise DataError(f"{at}: not valid JSON ({e.msg} at column {e.colno}){expected}") from None
    except RecursionError:
        raise DataError(f"{where}: not valid JSON (nested too deeply){expected}") from None
    except ValueError as e:  # an integer of more than sys.get_int_max_str_digits() digits
        why = f"a number of more than {sys.get_int_max_str_digits()} digits" if "digits" in str(e) else first_line(e)[:80]
        raise DataError(f"{where}: not valid JSON ({why}){expected}") from None


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


def _check_json(path: Path, columns: Sequence[str] | None = None) -> list[int] | None:
    """A ``.json`` file is JSON Lines (first character ``{``) or one array of objects."""
    with _open(path) as f:
        head = f.read(4096)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    head = head.lstrip()
    if not head or head.startswith(b"{"):
        return _check_jsonl(path, columns)
    if not head.startswith(b"["):
        raise DataError(f"{path}:1: expected JSON Lines (one object per line) or a JSON array of objects")
    with _open(path) as f:
        raw = f.read(MAX_TEXT_DATA_BYTES + 1)
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        bad = skip + e.start
        line_start = max(raw.rfind(b"\n", 0, bad) + 1, skip)
        lineno = raw.count(b"\n", 0, bad) + 1
        raise _not_utf8(f"{path}:{lineno}", e.reason, bad - line_start, line_start) from None
    del raw
    doc = _parse_json(text, str(path), document=True)
    if not doc:
        raise DataFileError(f"{path}: empty split (an empty JSON array)")
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
        raise DataFileError(f"{path}: empty split (no rows)")


def _csv_dialect(fmt: str) -> dict[str, Any]:
    # TSV follows the GLUE convention: fields are never quoted, quote characters are literal text.
    if fmt == "tsv":
        return {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    return {"delimiter": ",", "quoting": csv.QUOTE_MINIMAL}


_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


class _CsvFeed:
    """The lines of a CSV / TSV file for :func:`csv.reader`, with where each record starts and where an open quote opened.

    A lone carriage return ends a line, as in universal newlines mode.
    """

    def __init__(self, lines: Iterator[tuple[int, str]], quoting: bool):
        self._lines = lines
        self._pending: list[str] = []
        self._quoting = quoting
        self.lineno = 0
        self.record_start = 0
        self.open_line: int | None = None  # the line where a quoted field still open began
        self._odd = False

    def new_record(self) -> None:
        self.record_start = 0
        self.open_line, self._odd = None, False

    def __iter__(self) -> "_CsvFeed":
        return self

    def __next__(self) -> str:
        if self._pending:
            text = self._pending.pop()
        else:
            text = next(self._lines)[1]
            if "\r" in text and "\r" in text.rstrip("\r\n"):  # a carriage return before the line's end
                self._pending = _LONE_CR.split(text)[::-1]
                text = self._pending.pop()
        self.lineno += 1
        if not self.record_start:
            self.record_start = self.lineno
        if self._quoting and text.count('"') % 2:
            self._odd = not self._odd
            self.open_line = self.lineno if self._odd else None
        return text


@contextlib.contextmanager
def _field_limit(n: int) -> Iterator[None]:
    was = csv.field_size_limit(n)
    try:
        yield
    finally:
        csv.field_size_limit(was)


def _csv_error(path: Path, kind: str, feed: _CsvFeed, e: csv.Error) -> DataError:
    why = str(e)
    opened = feed.open_line
    if "field larger than field limit" in why:
        if opened is not None:
            return DataError(
                f"{path}:{opened}: a quoted field starts on this line and is not closed within {MAX_TEXT_CHARS} "
                'characters; close the quote (a literal quote inside a quoted field is written "")'
            )
        return DataFileError(
            f"{path}:{feed.record_start}: a field of more than {MAX_TEXT_CHARS} characters, the most allowed per field; "
            "shorten or split the example"
        )
    if opened is not None and (feed.lineno > opened or "end of data" in why):
        return DataError(
            f"{path}:{opened}: a quoted field starts on this line and is not closed where expected "
            f'(the {kind} parser stopped at line {feed.lineno}: {why}); a literal quote inside a quoted field is written ""'
        )
    return DataError(f"{path}:{feed.lineno}: malformed {kind} line ({why})")


_SEPARATORS = {";": "semicolon", "\t": "tab", ",": "comma", "|": "pipe"}


def _separator_hint(path: Path, line: int, fmt: str, header: list[str], columns: Sequence[str] | None) -> None:
    """A header read as one field that holds another separator: say so (a ``;``-separated CSV, a comma-separated .tsv)."""
    if len(header) != 1 or (columns is not None and all(c in header for c in columns)):
        return
    own = "\t" if fmt == "tsv" else ","
    for sep, name in _SEPARATORS.items():
        if sep != own and sep in header[0]:
            if fmt == "tsv":
                todo = "name the file .csv or set format: csv" if sep == "," else "save it with tabs"
                reads = "tab-separated values"
            else:
                todo = "name the file .tsv or set format: tsv" if sep == "\t" else "save it with commas"
                reads = "comma-separated values"
            raise DataError(
                f"{path}:{line}: the header is one field '{_cut(header[0])}' that looks {name}-separated; "
                f"taskmix reads {path.suffix or 'this file'} as {reads}: {todo}"
            )


def _check_csv(path: Path, fmt: str, columns: Sequence[str] | None = None) -> tuple[list[str], list[int]]:
    """Validate a CSV / TSV file record by record: the header and each row's starting line."""
    dialect = _csv_dialect(fmt)
    kind = "tab-separated" if fmt == "tsv" else "comma-separated"
    header: list[str] | None = None
    lines: list[int] = []
    with _open(path) as f, _field_limit(MAX_TEXT_CHARS):
        feed = _CsvFeed(_lines(f, path), quoting=fmt != "tsv")
        reader = csv.reader(feed, strict=True, **dialect)
        while True:
            feed.new_record()
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise _csv_error(path, kind, feed, e) from None
            start = feed.record_start
            if not record:  # blank line
                continue
            if header is None:
                header = record
                dup = sorted({c for c in header if header.count(c) > 1})
                if dup:
                    raise DataError(f"{path}:{start}: duplicate column name(s) {_names(dup)} in the header")
                _separator_hint(path, start, fmt, header, columns)
                continue
            if len(record) != len(header):
                raise DataError(
                    f"{path}:{start}: expected {len(header)} {kind} fields ({_names(header)}), found {len(record)}"
                )
            lines.append(start)
    if header is None:
        raise DataFileError(f"{path}: empty split (no header line and no rows)")
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
    _check_file(path)
    fmt = infer_format(path, fmt)
    lines: list[int] | None = None
    builder, kwargs = fmt, {}
    if fmt == "jsonl":
        lines = _check_jsonl(path, columns)
        builder = "json"
    elif fmt == "json":
        lines = _check_json(path, columns)
    elif fmt in ("csv", "tsv"):
        from datasets import Features, Value

        header, lines = _check_csv(path, fmt, columns)
        builder = "csv"
        kwargs = {
            **_csv_dialect(fmt),
            "na_filter": False,
            "features": Features({c: Value("string") for c in header}),
        }
    elif fmt == "parquet":
        _check_parquet(path)
    if lines is not None and not lines:
        raise DataFileError(f"{path}: empty split (no rows)")

    import datasets

    try:
        with _quiet_datasets():
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as e:  # datasets wraps parser errors in DatasetGenerationError
        cause = e.__cause__ or e.__context__ or e
        raise DataError(f"{path}: could not be read as {fmt} ({first_line(cause)})") from None
    if len(ds) == 0:
        raise DataFileError(f"{path}: empty split (no rows)")
    if lines is not None and len(lines) != len(ds):  # parsers disagree: fall back to row numbers
        lines = None
    return _table_from_dataset(ds, str(path), columns, lines)


def _table_from_dataset(ds: Any, source: str, columns: Sequence[str] | None, lines: list[int] | None) -> RawTable:
    available = list(ds.column_names)
    wanted = list(columns) if columns is not None else available
    missing = [c for c in wanted if c not in available]
    if missing:
        raise DataError(f"{source}: no column '{_cut(missing[0])}'; available columns: {_names(available)}")
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
