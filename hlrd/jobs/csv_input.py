"""Calling lists as compliance staff upload them: CSV read as a stream, the phone column found.

A list of a million rows is ordinary, so nothing here holds the file: `sniff` judges
the layout from the first `SNIFF_BYTES`, and `read_rows` then hands on one row at a
time with its original fields, because the annotated output repeats every original
column. A row that cannot be read (not UTF-8, too long, too wide) still comes out,
marked with its `problem`, so every output keeps each input row's place; the job
never fails for one bad row.

What real exports look like, and so what is accepted:
- UTF-8 with or without a BOM (Excel's "CSV UTF-8" writes one); CRLF or LF line
  ends; quoted fields with delimiters, doubled quotes and line breaks inside.
- `,`, `;` (Excel in most of Europe, where the comma is the decimal mark) or tab.
  `csv.Sniffer` (restricted to those three) is asked, but it gives up on many real
  files, takes `,` when a decimal comma splits every row of a `;` file, and `,`
  again in a tab file with "Nowak, Anna" in every row. So its guess only breaks
  ties: of the delimiters that split the first rows (nearly) most consistently,
  the one that yields a column of phone numbers wins, then the one giving the
  most columns, then the Sniffer's, then the rarest character in free text.
- Classic Mac line ends (CR only) are refused with a message: reading them would
  need a line splitter of their own, and Excel has not written them by default for
  years.

Which column holds the phone number, in this order (`Layout.detected_by` says which):
1. `chosen`: the user's choice, a header name (case-insensitive) or a 1-based position.
2. `vicidial`: VICIdial's lead-loader "Standard Format", with or without its header
   (see `VICIDIAL_FIELDS`); it carries the country calling code in a column of its
   own (`phone_code`), which `Layout.region_column` points at.
3. `header:<alias>`: a header cell equal to one of `PHONE_ALIASES` once case,
   accents, spaces, dashes and underscores are ignored ("Numer telefonu",
   "Rufnummer", "Número", "téléphone"). Several matches: a specific name beats the
   generic "number"/"numer"/"numero" (often a customer number), then the column
   whose cells look most like phone numbers, then the leftmost.
4. `fuzzy:<header>`: a header close to an alias (`difflib`, cutoff 0.8) or containing
   "phone", "tel", "mobil" or "msisdn" ("Phone No.", "Tel.", "Mobilnummer").
5. `content`: the column whose sampled cells most often look like phone numbers:
   7-15 digits once `+ ( ) - . /` and spaces are removed, and not a date. Close
   calls (within a tenth) go to the column with the longer numbers, since customer
   ids and postcodes are usually shorter than phone numbers.

The first row is a header for a candidate column when
- that cell holds no run of 6+ digits (separators ignored, so "+48 600 000 001"
  counts as one run: a first data row with a spaced number is not mistaken for a
  header),
- that cell matches an alias or looks like a name (has letters),
- no cell of the row looks like a phone number (a header names columns; a data row
  of a list with two phone columns must not pass because the candidate is empty),
- and the following rows' cells in that column do look like phone numbers (at
  least half of those not empty).
For a header chosen by name the first row is the header by definition.

Bounds (one peer can cost only a bounded share of memory): a record over
`MAX_ROW_BYTES` (one line, or a quoted field running over many) is refused as
"too_long" and skipped to the next line without being held; more than
`MAX_COLUMNS` fields is "too_many_columns". Error messages never quote a row: rows
hold phone numbers.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

MAX_ROW_BYTES = 64 * 1024  # a longer line is a refused row, not a memory blow-up
MAX_COLUMNS = 512
SNIFF_BYTES = 64 * 1024  # what the dialect and header are judged from

DELIMITERS = (",", ";", "\t")
BOM = b"\xef\xbb\xbf"

# Row.problem values. "malformed" is what the csv module itself refuses (a bare CR
# inside an unquoted field): rare, but one such row must not stop a job either.
TOO_LONG = "too_long"
BAD_ENCODING = "bad_encoding"
TOO_MANY_COLUMNS = "too_many_columns"
MALFORMED = "malformed"

SAMPLE_ROWS = 1000  # rows of the head judged for the phone column and header
_DELIMITER_ROWS = 50  # rows of the head judged for the delimiter
_SNIFFER_CHARS = 16 * 1024  # csv.Sniffer is slow on long samples; its guess needs no more
_CLOSE_CALL = 0.1  # content scores this near the best are decided by number length
_CONSISTENT = 0.05  # delimiters splitting this near the most consistent one are all in the running
_RARITY = ("\t", ";", ",")
_DRAIN_CHUNK = 64 * 1024

PHONE_ALIASES = (
    "phone",
    "phone_number",
    "phonenumber",
    "msisdn",
    "mobile",
    "mobile_phone",
    "cell",
    "cellphone",
    "telephone",
    "tel",
    "telefon",
    "telefon_komorkowy",
    "nr_telefonu",
    "numer",
    "numer_telefonu",
    "numero",
    "numero_telefono",
    "numero_de_telefono",
    "telefono",
    "telephone_number",
    "handy",
    "rufnummer",
    "gsm",
    "number",
    "contact_number",
)
# Generic words that as often head a customer or order number as a phone number.
_GENERIC_ALIASES = frozenset({"number", "numer", "numero"})
_FUZZY_PARTS = ("phone", "tel", "mobil", "msisdn")

# VICIdial's lead loader, "Standard Format" (admin_listloader_fourth_gen.php and its
# predecessors in VICIdial 2.14, checked against github.com/ccabrerar/vicidial,
# www/vicidial/admin_listloader_fourth_gen.php, 2024-11): each line is split and read
# by position, $row[0] .. $row[24], in exactly this order. The loader expects no
# header line (it converts .csv/.xls to tab-separated with sheet2tab.pl and splits on
# tab or pipe), strips non-digits from phone_code and phone_number, and defaults an
# empty phone_code to 1; its API documents phone_code as 1-4 digits and phone_number
# as 6-16 (NON-AGENT_API add_lead).
VICIDIAL_FIELDS = (
    "vendor_lead_code",
    "source_id",
    "list_id",
    "phone_code",
    "phone_number",
    "title",
    "first_name",
    "middle_initial",
    "last_name",
    "address1",
    "address2",
    "address3",
    "city",
    "state",
    "province",
    "postal_code",
    "country_code",
    "gender",
    "date_of_birth",
    "alt_phone",
    "email",
    "security_phrase",
    "comments",
    "rank",
    "owner",
)
_VICIDIAL_CODE = VICIDIAL_FIELDS.index("phone_code")
_VICIDIAL_PHONE = VICIDIAL_FIELDS.index("phone_number")
_VICIDIAL_MIN_NAMES = 20  # a header naming most of the fields (VICIdial exports add some)
_VICIDIAL_CODE_RE = re.compile(r"\+?[0-9]{1,3}")
_VICIDIAL_PHONE_RE = re.compile(r"[0-9]{6,12}")

_SEPARATORS = str.maketrans("", "", "+()-./ \t\u00a0\u202f")
_DIGIT_RUN = re.compile(r"[0-9]{6,}")
_DATE = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[ T][0-9:.]+)?"
    r"|[0-9]{1,2}[./-][0-9]{1,2}[./-](?:[0-9]{4}|[0-9]{2})"
)


class CsvError(ValueError):
    """The upload cannot be read as a calling list; the message says why and never
    quotes a row (rows hold phone numbers)."""


@dataclass(frozen=True, slots=True)
class Layout:
    delimiter: str  # ",", ";" or "\t"
    header: tuple[str, ...] | None  # None: no header row
    phone_column: int  # 0-based
    phone_column_name: str  # the header's name, or "column 3"
    detected_by: str  # "header:<alias>", "fuzzy:<header>", "vicidial", "chosen", "content"
    region_column: int | None = None  # VICIdial: phone_code, paired with phone_number
    bom: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    number: int  # 1-based data row number (header not counted)
    fields: tuple[str, ...]
    phone: str  # the phone as written ("" when the row has no such column)
    phone_code: str = ""  # VICIdial's phone_code when layout.region_column is set
    problem: str | None = None  # TOO_LONG, BAD_ENCODING, TOO_MANY_COLUMNS, MALFORMED


# -- judging cells ------------------------------------------------------------------


def normalize_name(name: str) -> str:
    """A header name as compared with the aliases: "Número de teléfono" and
    "numero_de_telefono" are one name to a person, so they are to us."""
    folded = unicodedata.normalize("NFKD", name.strip().casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    plain = plain.replace("ł", "l")  # Polish ł has no decomposition to strip
    return "".join(c for c in plain if not (c.isspace() or c in "-_"))


_ALIAS_BY_NAME: dict[str, str] = {}
for _alias in PHONE_ALIASES:
    _ALIAS_BY_NAME.setdefault(normalize_name(_alias), _alias)
_ALIAS_NAMES = list(_ALIAS_BY_NAME)


def looks_like_phone(cell: str) -> bool:
    """7-15 digits once the usual separators go: loose on purpose, since the washer
    judges the number itself; this only tells a phone column from the others."""
    text = cell.strip()
    if not text or _DATE.fullmatch(text):
        return False
    digits = text.translate(_SEPARATORS)
    return 7 <= len(digits) <= 15 and digits.isascii() and digits.isdigit()


def _has_digit_run(cell: str) -> bool:
    return _DIGIT_RUN.search(cell.translate(_SEPARATORS)) is not None


def _has_letters(cell: str) -> bool:
    return any(c.isalpha() for c in cell)


def _fuzzy_alias(cell: str) -> bool:
    name = normalize_name(cell)
    if not name:
        return False
    if any(part in name for part in _FUZZY_PARTS):
        return True
    return bool(difflib.get_close_matches(name, _ALIAS_NAMES, n=1, cutoff=0.8))


@dataclass(frozen=True, slots=True)
class _Score:
    """How phone-like one column of the sampled rows is."""

    phones: int  # cells that look like phone numbers
    filled: int  # cells not empty
    rows: int  # rows sampled
    digits: float  # mean digit count of the phone-like cells

    @property
    def share(self) -> float:
        return self.phones / self.rows if self.rows else 0.0

    @property
    def mostly_phones(self) -> bool:
        """At least half of what is there looks like a phone number: a sparse
        "mobile" column still counts, a notes column with the odd number does not."""
        return self.phones > 0 and 2 * self.phones >= self.filled


def _score(rows: Sequence[Sequence[str]], column: int) -> _Score:
    phones = filled = digits = 0
    for row in rows:
        cell = row[column] if column < len(row) else ""
        if not cell.strip():
            continue
        filled += 1
        if looks_like_phone(cell):
            phones += 1
            digits += len(cell.translate(_SEPARATORS))
    return _Score(phones, filled, len(rows), digits / phones if phones else 0.0)


def _is_header(first: Sequence[str], column: int, data: Sequence[Sequence[str]]) -> bool:
    """The rule in the module docstring, for one candidate column."""
    if column >= len(first) or not data:
        return False
    cell = first[column]
    if _has_digit_run(cell):
        return False
    if normalize_name(cell) not in _ALIAS_BY_NAME and not _has_letters(cell):
        return False
    if any(looks_like_phone(c) for c in first):
        return False
    return _score(data, column).mostly_phones


# -- sniffing -----------------------------------------------------------------------


def sniff(head: bytes, column: str | None = None) -> Layout:
    """The layout of a file judged from its first `SNIFF_BYTES` (`head`).

    `column` is the user's choice, a header name (case-insensitive) or a 1-based
    position; it wins over every rule, and CsvError says so when it names nothing.
    """
    head = head[:SNIFF_BYTES]
    truncated = len(head) >= SNIFF_BYTES
    bom = head.startswith(BOM)
    if bom:
        head = head[len(BOM) :]
    if not head.strip():
        raise CsvError("the file is empty")
    text = _sample_text(head, truncated)
    delimiter = _delimiter(text)
    rows = _sample_rows(text, delimiter, truncated)
    if not rows:
        raise CsvError("the file is empty")
    if len(rows[0]) > MAX_COLUMNS:
        raise CsvError(f"the first row has more than {MAX_COLUMNS} columns")
    if len(rows) == 1 and not any(looks_like_phone(c) for c in rows[0]):
        raise CsvError("the file has no data rows: only a header, or no phone numbers")
    wanted = (column or "").strip()
    if wanted:
        layout = _chosen(rows, wanted, delimiter, bom)
    else:
        layout = (
            _vicidial(rows, delimiter, bom)
            or _by_header(rows, delimiter, bom)
            or _by_content(rows, delimiter, bom)
        )
    if layout.header is not None and len(rows) < 2:
        raise CsvError("the file has a header and no data rows")
    return layout


def _sample_text(head: bytes, truncated: bool) -> str:
    """The head as text, cut at its last whole line when the file goes on."""
    if b"\n" not in head and b"\r" in head.strip(b"\r"):
        raise CsvError(
            "the lines end in CR only (old Mac format): save the file as CSV with "
            "CRLF or LF line ends"
        )
    if truncated:
        end = head.rfind(b"\n")
        if end < 0:
            raise CsvError(f"the first line is longer than {SNIFF_BYTES} bytes")
        head = head[: end + 1]
    return head.decode("utf-8", errors="replace")  # a bad byte here is a bad row later


def _records(text: str, delimiter: str, limit: int) -> list[list[str] | None]:
    """Up to `limit` non-blank records, split as `read_rows` splits them (on LF only,
    blank lines skipped) so that the header judged here is the one skipped there;
    None for a record the csv module refuses (with a wrong delimiter, a quote inside
    a field can leave a CR outside any quotes)."""
    records: list[list[str] | None] = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    while len(records) < limit:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            records.append(None)
            continue
        if row:
            records.append(row)
    return records


def _sample_rows(text: str, delimiter: str, truncated: bool) -> list[list[str]]:
    records = _records(text, delimiter, SAMPLE_ROWS)
    if records and records[0] is None:  # `read_rows` would take it for the header
        raise CsvError("the first row is not CSV (a bare CR inside a field?)")
    rows = [r for r in records if r is not None]
    if truncated and len(rows) > 2 and len(records) < SAMPLE_ROWS:
        rows.pop()  # the cut may fall inside a quoted line break
    return rows


@dataclass(frozen=True, slots=True)
class _Split:
    """How one delimiter splits the first rows."""

    delimiter: str
    share: float  # of rows with the most common field count
    width: int  # that count
    phones: float  # share of rows with a phone-like cell in the best column
    sniffed: bool  # csv.Sniffer's guess
    rarity: int  # tab, then `;`, then `,`: the rarer in free text, the likelier the delimiter


def _split(text: str, delimiter: str, guess: str | None) -> _Split | None:
    records = _records(text, delimiter, _DELIMITER_ROWS)
    rows = [r for r in records if r is not None]
    counts = Counter(len(r) for r in rows)
    if not counts:
        return None
    width, count = counts.most_common(1)[0]
    phones = max(_score(rows, i).share for i in range(min(width, MAX_COLUMNS)))
    rarity = _RARITY.index(delimiter)
    return _Split(delimiter, count / len(records), width, phones, delimiter == guess, rarity)


def _delimiter(text: str) -> str:
    """Among the delimiters that split the first rows (nearly) most consistently into
    2+ columns: the one that yields a phone column, then the most columns, then
    csv.Sniffer's guess, then the rarest character. The Sniffer alone misreads `;`
    files with decimal commas and tab files with commas in names ("Nowak, Anna")."""
    try:
        sniffer = csv.Sniffer().sniff(text[:_SNIFFER_CHARS], "".join(DELIMITERS))
        guess: str | None = sniffer.delimiter
    except csv.Error:
        guess = None
    splits = [s for d in DELIMITERS if (s := _split(text, d, guess)) and s.width >= 2]
    if not splits:  # one column: nothing to split on
        return guess if guess in DELIMITERS else ","
    best_share = max(s.share for s in splits)
    consistent = [s for s in splits if s.share >= best_share - _CONSISTENT]
    chosen = max(consistent, key=lambda s: (round(s.phones, 1), s.width, s.sniffed, -s.rarity))
    return chosen.delimiter


def _name(header: Sequence[str] | None, column: int) -> str:
    if header is not None and column < len(header) and header[column].strip():
        return header[column].strip()
    return f"column {column + 1}"


def _chosen(rows: list[list[str]], wanted: str, delimiter: str, bom: bool) -> Layout:
    first = rows[0]
    header: tuple[str, ...] | None
    if wanted.isascii() and wanted.isdigit():
        width = max(len(r) for r in rows)
        position = int(wanted)
        if not 1 <= position <= width:
            raise CsvError(f"column {wanted} does not exist: the rows have {width} columns")
        column = position - 1
        header = tuple(first) if _is_header(first, column, rows[1:]) else None
    else:
        folded = [c.strip().casefold() for c in first]
        names = [normalize_name(c) for c in first]
        if wanted.casefold() in folded:
            column = folded.index(wanted.casefold())
        elif normalize_name(wanted) in names:
            column = names.index(normalize_name(wanted))
        else:
            raise CsvError(f'no column named "{wanted}" in the header')
        header = tuple(first)
    region = _vicidial_region(rows, header, column)
    return Layout(delimiter, header, column, _name(header, column), "chosen", region, bom)


def _vicidial_region(
    rows: list[list[str]], header: tuple[str, ...] | None, column: int
) -> int | None:
    """The phone_code column when the chosen column is VICIdial's phone_number."""
    if header is not None:
        names = [c.strip().lower() for c in header]
        if names[column] == "phone_number" and "phone_code" in names:
            return names.index("phone_code")
        return None
    if column == _VICIDIAL_PHONE and _vicidial_rows(rows) * 2 > len(rows):
        return _VICIDIAL_CODE
    return None


def _vicidial_rows(rows: Sequence[Sequence[str]]) -> int:
    return sum(
        1
        for r in rows
        if len(r) == len(VICIDIAL_FIELDS)
        and _VICIDIAL_CODE_RE.fullmatch(r[_VICIDIAL_CODE].strip())
        and _VICIDIAL_PHONE_RE.fullmatch(r[_VICIDIAL_PHONE].strip())
    )


def _vicidial(rows: list[list[str]], delimiter: str, bom: bool) -> Layout | None:
    first = rows[0]
    names = [c.strip().lower() for c in first]
    known = set(names) & set(VICIDIAL_FIELDS)
    header: tuple[str, ...] | None
    if {"phone_code", "phone_number"} <= known and len(known) >= _VICIDIAL_MIN_NAMES:
        header = tuple(first)
        column, region = names.index("phone_number"), names.index("phone_code")
    elif _vicidial_rows(rows) * 2 > len(rows):
        column, region = _VICIDIAL_PHONE, _VICIDIAL_CODE
        header = tuple(first) if _is_header(first, column, rows[1:]) else None
    else:
        return None
    return Layout(
        delimiter=delimiter,
        header=header,
        phone_column=column,
        phone_column_name=_name(header, column),
        detected_by="vicidial",
        region_column=region,
        bom=bom,
    )


def _by_header(rows: list[list[str]], delimiter: str, bom: bool) -> Layout | None:
    first, data = rows[0], rows[1:]
    header = tuple(first)
    exact = [
        (i, alias)
        for i, cell in enumerate(first)
        if (alias := _ALIAS_BY_NAME.get(normalize_name(cell))) and _is_header(first, i, data)
    ]
    if exact:
        column, alias = max(
            exact,
            key=lambda c: (c[1] not in _GENERIC_ALIASES, _score(data, c[0]).share, -c[0]),
        )
        return Layout(
            delimiter, header, column, _name(header, column), f"header:{alias}", None, bom
        )
    fuzzy = [i for i, cell in enumerate(first) if _fuzzy_alias(cell) and _is_header(first, i, data)]
    if fuzzy:
        column = max(fuzzy, key=lambda i: (_score(data, i).share, -i))
        name = _name(header, column)
        return Layout(delimiter, header, column, name, f"fuzzy:{name}", None, bom)
    return None


def _by_content(rows: list[list[str]], delimiter: str, bom: bool) -> Layout:
    first = rows[0]
    data = rows[1:] or rows
    width = max(len(r) for r in data)
    scores = [(i, _score(data, i)) for i in range(min(width, MAX_COLUMNS))]
    usable = [(i, s) for i, s in scores if s.mostly_phones]
    if not usable:
        raise CsvError("no column looks like phone numbers: choose the column")
    best = max(s.share for _, s in usable)
    close = [(i, s) for i, s in usable if s.share >= best - _CLOSE_CALL]
    column = max(close, key=lambda c: (c[1].digits, c[1].share, -c[0]))[0]
    header = tuple(first) if len(rows) > 1 and _is_header(first, column, rows[1:]) else None
    return Layout(delimiter, header, column, _name(header, column), "content", None, bom)


# -- reading ------------------------------------------------------------------------


class _TooLong(Exception):
    """Raised through csv.reader to abandon a record past MAX_ROW_BYTES."""


class _Lines:
    """The stream's physical lines, decoded one at a time, for csv.reader.

    Reading is bounded by `readline(MAX_ROW_BYTES + 1)`, so no line is ever held
    whole past the limit; the bytes of the record being parsed are counted, so a
    quoted field that never closes cannot swallow the file either. A line that is
    not UTF-8 marks its record and is passed on decoded with replacement characters:
    invalid UTF-8 bytes are never ASCII, so quotes, delimiters and line breaks stay
    where they were and the parser stays in step with the file.
    """

    __slots__ = ("_first", "_stream", "bad", "record_bytes")

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._first = True
        self.record_bytes = 0
        self.bad = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self._stream.readline(MAX_ROW_BYTES + 1)
        if not raw:
            raise StopIteration
        if self._first:
            self._first = False
            if raw.startswith(BOM):
                raw = raw[len(BOM) :]
        self.record_bytes += len(raw)
        if self.record_bytes > MAX_ROW_BYTES:
            if not raw.endswith(b"\n"):
                self._skip_rest_of_line()
            raise _TooLong
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad = True
            return raw.decode("utf-8", errors="replace")

    def _skip_rest_of_line(self) -> None:
        while True:
            chunk = self._stream.readline(_DRAIN_CHUNK)
            if not chunk or chunk.endswith(b"\n"):
                return


def _reader(lines: _Lines, delimiter: str) -> Iterator[list[str]]:
    return csv.reader(lines, delimiter=delimiter)


def _allow_row_sized_fields() -> None:
    """A field may be as long as a row. The limit is process-wide, so it is only
    ever raised to that, never lowered: the record guard in `_Lines` is what bounds
    memory here, and other readers in the process keep what they set."""
    if csv.field_size_limit() < MAX_ROW_BYTES:
        csv.field_size_limit(MAX_ROW_BYTES)


def read_rows(stream: BinaryIO, layout: Layout) -> Iterator[Row]:
    """Every data row after the header (if any), one at a time, numbered from 1.

    Blank lines are no rows (exports often end with some). A row that cannot be read
    still yields, with its `problem`: too_long and too_many_columns ones with no
    fields (they are not kept), bad_encoding ones with the fields as decoded with
    replacement characters so the row can still be found in the output.
    """
    _allow_row_sized_fields()
    lines = _Lines(stream)
    reader = _reader(lines, layout.delimiter)
    column, region = layout.phone_column, layout.region_column
    header_pending = layout.header is not None
    number = 0
    while True:
        lines.record_bytes = 0
        lines.bad = False
        problem: str | None = None
        fields: list[str] = []
        try:
            fields = next(reader)
        except StopIteration:
            return
        except _TooLong:
            problem = TOO_LONG
            reader = _reader(lines, layout.delimiter)  # start clean at the next line
        except csv.Error:
            problem = MALFORMED
            reader = _reader(lines, layout.delimiter)
        else:
            if not fields:
                continue
            if len(fields) > MAX_COLUMNS:
                problem, fields = TOO_MANY_COLUMNS, []
            elif lines.bad:
                problem = BAD_ENCODING
        if header_pending:
            header_pending = False
            continue
        number += 1
        yield Row(
            number,
            tuple(fields),
            fields[column] if column < len(fields) else "",
            fields[region] if region is not None and region < len(fields) else "",
            problem,
        )
