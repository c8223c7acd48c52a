"""Registry files, read as a stream of E.164 numbers (None for a row that is not one).

Formats (`hlrd lists import NAME FILE --format ...`):
- `lines`: one number a line (`#` comments and blank lines skipped).
- `csv`: a CSV/TSV (`,` `;` or tab, found from the first line), the number in
  `column` (a header name, or a 1-based position; default the first), a header
  row recognised by its not being a number.
- `tps`: the UK TPS/CTPS file: 12-character fixed records, a national number
  left-aligned and space-padded, one a line or back to back.
- `us_ftc`: the US National DNC Registry's download: `areacode,number` (or ten
  digits) a line; its change lists (additions, deletions) are the same layout.
- `rpo`: Italy's Registro Pubblico delle Opposizioni returned file: `;`-separated,
  the number first and its outcome after it; only numbers marked as registered
  (`1`, `S`, `SI`, `Y`) are listed.
National numbers are read in `region` (GB for TPS, US for the FTC, IT for the RPO).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .numbers_in import NationalNumbers

FORMATS = ("lines", "csv", "tps", "us_ftc", "rpo")
DEFAULT_REGION = {"tps": "GB", "us_ftc": "US", "rpo": "IT"}
TPS_RECORD = 12
_REGISTERED = frozenset({"1", "S", "SI", "Y", "YES", "TRUE"})
_MAX_LINE = 4096  # a longer "line" is no registry row (and is not held whole)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    format: str = "lines"
    region: str = ""  # default: the format's country, else the daemon's default region
    column: str = ""  # csv: header name or 1-based position
    delimiter: str = ""  # csv: found from the first line when empty


def read_numbers(
    text: IO[str], options: ReadOptions, default_region: str = "PL"
) -> Iterator[str | None]:
    """Each row's number in E.164 digits, or None for a row that is not a number."""
    for batch in read_batches(text, options, default_region):
        yield from batch


def read_batches(
    text: IO[str], options: ReadOptions, default_region: str = "PL"
) -> Iterator[list[str | None]]:
    """`read_numbers` a megabyte of the file at a time: a registry has tens of
    millions of rows, and a generator step per row costs as much as the row."""
    if options.format not in FORMATS:
        raise ValueError(f"format: one of {', '.join(FORMATS)}")
    region = options.region or DEFAULT_REGION.get(options.format, default_region)
    national = NationalNumbers(region)
    many = national.e164_many
    if options.format == "lines":
        for lines in _line_batches(text):
            yield many([s for s in lines if s.strip() and not s.lstrip().startswith("#")])
    elif options.format == "tps":
        for lines in _line_batches(text):
            records: list[str] = []
            for s in lines:
                s = s.rstrip("\r")
                if len(s) > TPS_RECORD and len(s) % TPS_RECORD == 0:
                    records += [s[i : i + TPS_RECORD] for i in range(0, len(s), TPS_RECORD)]
                elif s.strip():
                    records.append(s)
            yield many(records)
    elif options.format == "us_ftc":
        for lines in _line_batches(text):
            yield many([s.replace(",", "") for s in lines if s.strip()])
    elif options.format == "rpo":
        for lines in _line_batches(text):
            registered = []
            for line in lines:
                fields = line.rstrip("\r").split(";")
                registered_row = len(fields) >= 2 and fields[1].strip().upper() in _REGISTERED
                if registered_row and fields[0].strip():
                    registered.append(fields[0])
            yield many(registered)
    else:
        batch: list[str | None] = []
        for number in _csv_numbers(text, options, national):
            batch.append(number)
            if len(batch) >= 100_000:
                yield batch
                batch = []
        yield batch


def _line_batches(text: IO[str]) -> Iterator[list[str]]:
    """The file's lines (without their newline), a megabyte at a time. A line longer
    than _MAX_LINE is no row: it is dropped whole, not held."""
    carry = ""
    while True:
        chunk = text.read(1 << 20)
        if not chunk:
            break
        lines = (carry + chunk).split("\n")
        carry = lines.pop()
        if len(carry) > _MAX_LINE:
            carry = ""
        yield lines
    if carry:
        yield [carry]


def _lines(text: IO[str]) -> Iterator[str]:
    for batch in _line_batches(text):
        for line in batch:
            yield line + "\n"


def _csv_numbers(
    text: IO[str], options: ReadOptions, national: NationalNumbers
) -> Iterator[str | None]:
    first = text.readline(_MAX_LINE)
    if not first:
        return
    delimiter = options.delimiter or max((",", ";", "\t"), key=first.count)
    rows = csv.reader(_chain(first, text), delimiter=delimiter)
    header = next(rows, None)
    if header is None:
        return
    column = _column(options.column, header)
    if national.e164(header[column] if column < len(header) else "") is not None:
        yield national.e164(header[column])  # no header: the first row is a number
    for row in rows:
        yield national.e164(row[column]) if column < len(row) else None


def _column(wanted: str, header: list[str]) -> int:
    if not wanted:
        return 0
    if wanted.isdigit():
        if int(wanted) < 1:
            raise ValueError("column: positions count from 1")
        return int(wanted) - 1
    names = [h.strip().lower() for h in header]
    if wanted.strip().lower() not in names:
        raise ValueError(f"column: no column named {wanted!r} in the header")
    return names.index(wanted.strip().lower())


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    yield first
    yield from _lines(rest)


def open_text(raw: IO[bytes]) -> io.TextIOWrapper:
    """A registry file as text: UTF-8 (a BOM dropped), a bad byte replaced rather
    than ending the import (its row then fails as not a number)."""
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
