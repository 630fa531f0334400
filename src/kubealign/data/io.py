"""Reading and writing record files at any fsspec URI (local path, file://, s3://, ...).

`iter_rows` streams records with their row numbers and never raises for a bad *record*: a line that
is not UTF-8 or not JSON (including numbers over Python's 4300-digit limit and nesting deeper than
the parser's recursion limit), an object with a repeated key, or a JSON value that is not an object,
comes back as a `Rejection` in its place, so the validator can report every bad row and keep the rest. Problems with the *file* itself (missing, unknown
format, not Parquet) raise `DataInputError`, one line naming the URI.

Row numbers: JSONL counts physical lines from 1, ended by LF, CRLF or a lone CR (blank lines are
skipped but counted, so the number is what an editor shows); Parquet and JSON arrays count records from 1.
"""

from __future__ import annotations

import codecs
import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from kubealign.data.records import Reason, Rejection
from kubealign.storage import StorageError, fs_and_path, write_bytes

Row = tuple[int, "dict[str, Any] | Rejection"]

# suffix -> (format, compression); longest suffixes first so `.jsonl.gz` wins over `.gz`.
FORMATS: dict[str, tuple[str, str | None]] = {
    ".jsonl.gz": ("jsonl", "gzip"),
    ".json.gz": ("json", "gzip"),
    ".jsonl": ("jsonl", None),
    ".json": ("json", None),
    ".parquet": ("parquet", None),
}


class DataInputError(ValueError):
    """The input file as a whole cannot be read: missing, unknown format, corrupt. Names the URI."""


def detect_format(uri: str) -> tuple[str, str | None]:
    """`(format, compression)` from the file name; format is jsonl, json or parquet."""
    name = uri.split("?", 1)[0].lower()
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise DataInputError(f"{uri}: unknown file type; expected one of {', '.join(FORMATS)}")


def row_unit(uri: str) -> str:
    """What a row number counts in this file: 'line' (JSONL) or 'record' (Parquet, JSON array)."""
    return "line" if detect_format(uri)[0] == "jsonl" else "record"


def _open(uri: str, compression: str | None) -> IO[bytes]:
    try:
        fs, path = fs_and_path(uri)
        return fs.open(path, "rb", compression=compression)
    except StorageError as err:
        raise DataInputError(str(err)) from None
    except FileNotFoundError:
        raise DataInputError(f"{uri}: no such file") from None
    except IsADirectoryError:
        raise DataInputError(f"{uri}: is a folder, expected a file") from None
    except OSError as err:
        raise DataInputError(f"{uri}: cannot open ({err})") from None


def iter_rows(uri: str) -> Iterator[Row]:
    """Yield `(row, record)` or `(row, Rejection)` for every record in the file, in file order.

    Opens the file before returning, so a missing or unknown file fails here, not at the first row.
    """
    fmt, compression = detect_format(uri)
    f = _open(uri, compression)
    if fmt == "parquet":
        return _closing(uri, f, _parquet_rows(uri, f))
    if fmt == "json":
        return _closing(uri, f, _json_rows(uri, f))
    return _closing(uri, f, _jsonl_rows(uri, f))


def _closing(uri: str, f: IO[bytes], rows: Iterator[Row]) -> Iterator[Row]:
    try:
        yield from rows
    except (OSError, EOFError) as err:  # a read failing half way (network, bad gzip): still one line
        raise DataInputError(f"{uri}: read failed ({type(err).__name__}: {err})") from None
    finally:
        f.close()


class _DuplicateKeys(dict):
    """An object that had a key twice; `json.loads` keeps the last value, we reject the record."""

    key: str = ""


def _first_repeat(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


def _duplicate_key(obj: Any) -> str | None:
    """The first repeated key anywhere inside `obj` (walked without recursion: records can nest deep)."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, _DuplicateKeys):
            return item.key
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _loads(text: str) -> tuple[Any, bool]:
    """`json.loads` that marks objects with a repeated key (`_DuplicateKeys`) instead of keeping the last;
    the flag says whether there is any, so clean text (nearly all of it) is not walked again."""
    repeated = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        repeated = True
        dup = _DuplicateKeys(obj)
        dup.key = _first_repeat(pairs)
        return dup

    return json.loads(text, object_pairs_hook=hook), repeated


def _parse_error(err: Exception, text: str) -> str:
    """What is wrong with one unparseable JSON text, in words a person can act on."""
    if isinstance(err, json.JSONDecodeError):
        where = "the line ends too early" if err.pos >= len(text) else f"at character {err.pos + 1}"
        return f"expected one JSON object: {err.msg}, {where}"
    if isinstance(err, RecursionError):  # the parser recurses per nesting level
        return f"expected one JSON object: nested deeper than the parser allows (about {sys.getrecursionlimit()} levels)"
    # Python caps int() at 4300 digits (CVE-2020-10735); the rest of the message is advice to developers
    return f"expected one JSON object: a number is too long ({str(err).split(';')[0]})"


def _parse_line(row: int, raw: bytes) -> dict[str, Any] | Rejection | None:
    """One JSONL line -> record, Rejection, or None for a blank line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        msg = f"expected UTF-8 text; byte {err.start + 1} of the line (0x{raw[err.start]:02x}) is not valid UTF-8"
        return Rejection(row, Reason.INVALID_UTF8.value, None, msg)
    text = text.rstrip("\r\n")
    if not text.strip():
        return None
    try:
        obj, repeated = _loads(text)
    except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError, as is int()'s digit limit
        return Rejection(row, Reason.UNPARSEABLE_LINE.value, None, _parse_error(err, text))
    return _as_record(row, obj, repeated)


def _as_record(row: int, obj: Any, repeated: bool = False) -> dict[str, Any] | Rejection:
    """`obj` if it is an object; `repeated`: some object in the text had a key twice (find it in `obj`)."""
    if isinstance(obj, dict):
        key = _duplicate_key(obj) if repeated else None
        if key is not None:
            return Rejection(row, Reason.DUPLICATE_KEY.value, key,
                             f"expected each key once per object; {key!r} appears twice (JSON readers "
                             "disagree on which value wins)")
        return dict(obj)
    kind = {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(type(obj), "a number")
    return Rejection(row, Reason.WRONG_TYPE.value, None, f"expected a JSON object, got {kind}")


def _lines(f: IO[bytes]) -> Iterator[bytes]:
    """Physical lines, ending at LF, CRLF or a lone CR (as editors count them), read as a stream.

    A raw CR cannot occur inside a JSON string or a UTF-8 multi-byte sequence, so splitting on it
    never cuts a valid record.
    """
    for raw in f:
        if b"\r" in raw.rstrip(b"\r\n"):
            yield from raw.splitlines()
        else:
            yield raw


def _jsonl_rows(uri: str, f: IO[bytes]) -> Iterator[Row]:
    for row, raw in enumerate(_lines(f), 1):
        if row == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        parsed = _parse_line(row, raw)
        if parsed is not None:
            yield row, parsed


def _json_rows(uri: str, f: IO[bytes]) -> Iterator[Row]:
    """`.json`: a JSON array of objects (rows are record indices), or else JSON Lines."""
    data = f.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    if not data.lstrip().startswith(b"["):
        for row, raw in enumerate(data.splitlines(keepends=True), 1):
            parsed = _parse_line(row, raw)
            if parsed is not None:
                yield row, parsed
        return
    try:
        text = data.decode("utf-8")
        items, repeated = _loads(text)
    except UnicodeDecodeError as err:
        raise DataInputError(f"{uri}: byte {err.start + 1} is not valid UTF-8") from None
    except json.JSONDecodeError as err:
        raise DataInputError(f"{uri}: not a JSON array: {err.msg} at line {err.lineno} column {err.colno}") from None
    except (ValueError, RecursionError) as err:  # one parse for the whole array: no row to blame
        raise DataInputError(f"{uri}: not a readable JSON array: {_parse_error(err, text)}") from None
    for row, obj in enumerate(items, 1):
        yield row, _as_record(row, obj, repeated)


def _parquet_rows(uri: str, f: IO[bytes], batch_size: int = 1024) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)
    except (pa.ArrowException, OSError) as err:
        raise DataInputError(f"{uri}: not a readable Parquet file ({err})") from None
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_size):
            for record in batch.to_pylist():
                row += 1
                yield row, record
    except pa.ArrowException as err:
        raise DataInputError(f"{uri}: Parquet read failed after record {row} ({err})") from None


def dumps_jsonl(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in records)


def write_jsonl(uri: str, records: Iterable[dict[str, Any]]) -> None:
    """Write records as JSON Lines in one atomic write (readers never see half a file)."""
    write_bytes(uri, dumps_jsonl(records))


def read_jsonl(uri: str) -> list[dict[str, Any]]:
    """Every record of a JSONL file this package wrote (no per-row checks: it is already clean)."""
    out = []
    for row, rec in iter_rows(uri):
        if isinstance(rec, Rejection):
            raise DataInputError(f"{uri}: line {row}: {rec.reason}: {rec.message}")
        out.append(rec)
    return out


__all__ = ["DataInputError", "FORMATS", "detect_format", "iter_rows", "read_jsonl", "row_unit", "write_jsonl"]
