"""Calling lists as CRMs and dialers export them, read from real files on disk."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlrd.jobs.csv_input import (
    MAX_COLUMNS,
    MAX_ROW_BYTES,
    SNIFF_BYTES,
    VICIDIAL_FIELDS,
    CsvError,
    Layout,
    Row,
    read_rows,
    sniff,
)

BOM = "\ufeff"


def _write(tmp_path: Path, data: str | bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _read(path: Path, column: str | None = None) -> tuple[Layout, list[Row]]:
    """As the job manager does: the head for the sniffer, then the whole file streamed."""
    with path.open("rb") as f:
        layout = sniff(f.read(SNIFF_BYTES), column)
        f.seek(0)
        return layout, list(read_rows(f, layout))


def _expected(text: str, delimiter: str, header: bool) -> list[list[str]]:
    """The stdlib's own reading of the same text: the fields must come out exactly so."""
    reader = csv.reader(io.StringIO(text.lstrip(BOM), newline=""), delimiter=delimiter)
    rows = [r for r in reader if r]
    return rows[1:] if header else rows


# -- dialects -----------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_each_delimiter_is_found(tmp_path: Path, delimiter: str) -> None:
    lines = [["name", "phone", "note"], ["Anna Nowak", "+48 600 000 001", "a"]]
    lines += [[f"Person {i}", f"+48 600 000 {i:03d}", "b"] for i in range(2, 30)]
    text = "".join(delimiter.join(r) + "\n" for r in lines)
    layout, rows = _read(_write(tmp_path, text))
    assert layout.delimiter == delimiter
    assert layout.header == ("name", "phone", "note")
    assert (layout.phone_column, layout.detected_by) == (1, "header:phone")
    assert [list(r.fields) for r in rows] == _expected(text, delimiter, header=True)
    assert [r.number for r in rows] == list(range(1, 30))
    assert rows[0].phone == "+48 600 000 001"


def test_semicolons_win_over_decimal_commas(tmp_path: Path) -> None:
    """Excel in Europe: `;` between fields, `,` in every amount; csv.Sniffer says `,`."""
    text = "".join(f"Firma {i};60000{i:04d};{i},50\n" for i in range(40))
    assert csv.Sniffer().sniff(text, ",;\t").delimiter == ","
    layout, rows = _read(_write(tmp_path, text))
    assert (layout.delimiter, layout.phone_column) == (";", 1)
    assert rows[3].fields == ("Firma 3", "600000003", "3,50")


@pytest.mark.parametrize(
    ("line", "delimiter"),
    [
        ("Nowak, Anna\t{n}\tWarszawa, PL", "\t"),  # Sniffer: ","
        ("Nowak; Anna,{n},Warszawa; PL", ","),
    ],
)
def test_the_other_delimiters_inside_every_row(tmp_path: Path, line: str, delimiter: str) -> None:
    text = "".join(line.format(n=f"60000{i:04d}") + "\n" for i in range(30))
    layout, rows = _read(_write(tmp_path, text))
    assert (layout.delimiter, layout.phone_column) == (delimiter, 1)
    assert [list(r.fields) for r in rows] == _expected(text, delimiter, header=False)


def test_a_delimiter_the_sniffer_gives_up_on(tmp_path: Path) -> None:
    text = (
        "Imię;Nazwisko;Numer telefonu;Uwagi\r\n"
        'Anna;Nowak;+48 600 000 001;"w domu; dzwonić"\r\n'
        "Jan;Kowalski;0048600000003;roaming, Egypt\r\n"
    )
    with pytest.raises(csv.Error):
        csv.Sniffer().sniff(text, ",;\t")
    layout, rows = _read(_write(tmp_path, text))
    assert (layout.delimiter, layout.detected_by) == (";", "header:numer_telefonu")
    assert rows[0].fields == ("Anna", "Nowak", "+48 600 000 001", "w domu; dzwonić")


def test_bom_is_stripped_and_remembered(tmp_path: Path) -> None:
    text = BOM + "Telefon;Imię\r\n600000001;Anna\r\n600000002;Ewa\r\n"
    layout, rows = _read(_write(tmp_path, text))
    assert layout.bom
    assert layout.header == ("Telefon", "Imię")  # no BOM glued to the first name
    assert layout.detected_by == "header:telefon"
    assert [r.phone for r in rows] == ["600000001", "600000002"]


def test_a_file_without_bom_says_so(tmp_path: Path) -> None:
    layout, _ = _read(_write(tmp_path, "phone\n600000001\n"))
    assert not layout.bom


def test_crlf_line_ends(tmp_path: Path) -> None:
    text = "Name,Mobile\r\nAnna,600000001\r\nJan,600000002\r\n"
    layout, rows = _read(_write(tmp_path, text))
    assert layout.detected_by == "header:mobile"
    assert [r.fields for r in rows] == [("Anna", "600000001"), ("Jan", "600000002")]
    assert [list(r.fields) for r in rows] == _expected(text, ",", header=True)


def test_quoted_fields_keep_delimiters_quotes_and_line_breaks(tmp_path: Path) -> None:
    text = (
        "name,phone,comment\r\n"
        '"Nowak, Anna",600000001,"said ""call me"" twice"\r\n'
        '"Kowalski\r\nJan",600000002,"line one\nline two, still one field"\r\n'
        "Ewa,600000003,plain\r\n"
    )
    layout, rows = _read(_write(tmp_path, text))
    assert layout.phone_column == 1
    assert [list(r.fields) for r in rows] == _expected(text, ",", header=True)
    assert rows[0].fields[0] == "Nowak, Anna"
    assert rows[0].fields[2] == 'said "call me" twice'
    assert rows[1].fields == ("Kowalski\r\nJan", "600000002", "line one\nline two, still one field")
    assert [r.number for r in rows] == [1, 2, 3]  # records, not physical lines


def test_blank_lines_are_no_rows(tmp_path: Path) -> None:
    text = "phone,name\n\n600000001,Anna\n\n600000002,Jan\n\n\n"
    _, rows = _read(_write(tmp_path, text))
    assert [(r.number, r.phone) for r in rows] == [(1, "600000001"), (2, "600000002")]


def test_cr_only_line_ends_are_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="CR only"):
        _read(_write(tmp_path, "phone\r600000001\r600000002\r"))


# -- finding the phone column ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("Numer telefonu", "numer_telefonu"),  # Polish
        ("Telefon komórkowy", "telefon_komorkowy"),
        ("Rufnummer", "rufnummer"),  # German
        ("Handy", "handy"),
        ("Número", "numero"),  # Spanish
        ("Número de teléfono", "numero_de_telefono"),
        ("téléphone", "telephone"),  # French
        ("MSISDN", "msisdn"),
        ("Mobile-Phone", "mobile_phone"),
        (" contact_number ", "contact_number"),
    ],
)
def test_header_aliases(tmp_path: Path, name: str, alias: str) -> None:
    text = f"Imię;Nazwisko;{name};Uwagi\n" + "".join(
        f"Osoba;{i};+48 600 000 {i:03d};-\n" for i in range(1, 6)
    )
    layout, rows = _read(_write(tmp_path, text))
    assert layout.detected_by == f"header:{alias}"
    assert layout.phone_column == 2
    assert layout.phone_column_name == name.strip()
    assert rows[4].phone == "+48 600 000 005"


def test_a_specific_name_beats_a_generic_number(tmp_path: Path) -> None:
    """ "Number" often heads a customer number: "Phone" is the one wanted."""
    text = "Number,Phone\n" + "".join(f"{10000000 + i},60000{i:04d}\n" for i in range(10))
    layout, _ = _read(_write(tmp_path, text))
    assert (layout.phone_column, layout.detected_by) == (1, "header:phone")


def test_fuzzy_header(tmp_path: Path) -> None:
    text = "Customer,Phone No.,City\nAnna,0601 000 001,Kraków\nJan,0601 000 002,Gdańsk\n"
    layout, rows = _read(_write(tmp_path, text))
    assert layout.detected_by == "fuzzy:Phone No."
    assert (layout.phone_column, layout.phone_column_name) == (1, "Phone No.")
    assert [r.phone for r in rows] == ["0601 000 001", "0601 000 002"]


def test_content_without_header(tmp_path: Path) -> None:
    text = "".join(f"{i},Anna {i},1980-01-{i:02d},(0)600-000-{i:03d}\n" for i in range(1, 21))
    layout, rows = _read(_write(tmp_path, text))
    assert layout.header is None
    assert layout.detected_by == "content"
    assert (layout.phone_column, layout.phone_column_name) == (3, "column 4")
    assert len(rows) == 20  # the first line is a row, not a header
    assert rows[0].phone == "(0)600-000-001"
    assert [list(r.fields) for r in rows] == _expected(text, ",", header=False)


def test_content_with_a_header_of_unknown_names(tmp_path: Path) -> None:
    text = "Kunde;Kontakt;Ort\n" + "".join(f"K{i};+49 151 {i:07d};Berlin\n" for i in range(10))
    layout, rows = _read(_write(tmp_path, text))
    assert (layout.detected_by, layout.phone_column_name) == ("content", "Kontakt")
    assert layout.header == ("Kunde", "Kontakt", "Ort")
    assert len(rows) == 10


def test_a_first_data_row_with_a_spaced_number_is_no_header(tmp_path: Path) -> None:
    text = "Anna;Nowak;+48 600 000 001\nJan;Kowalski;+48 600 000 002\nEwa;Mazur;+48 600 000 003\n"
    layout, rows = _read(_write(tmp_path, text))
    assert layout.header is None
    assert [r.number for r in rows] == [1, 2, 3]


def test_a_single_column_of_numbers(tmp_path: Path) -> None:
    layout, rows = _read(_write(tmp_path, "600000001\n600000002\n600000003\n"))
    assert (layout.header, layout.phone_column, layout.detected_by) == (None, 0, "content")
    assert [r.phone for r in rows] == ["600000001", "600000002", "600000003"]


def test_no_column_that_could_be_phones(tmp_path: Path) -> None:
    text = "name,city\nAnna,Kraków\nJan,Gdańsk\n"
    with pytest.raises(CsvError, match="no column looks like phone numbers"):
        _read(_write(tmp_path, text))


# -- the user's choice ----------------------------------------------------------------

CHOICE = "Name;Tel. dom;Tel. praca\nAnna;221000001;600000001\nJan;221000002;600000002\n"


def test_chosen_by_name_case_insensitive(tmp_path: Path) -> None:
    layout, rows = _read(_write(tmp_path, CHOICE), column="tel. PRACA")
    assert (layout.phone_column, layout.phone_column_name) == (2, "Tel. praca")
    assert layout.detected_by == "chosen"
    assert [r.phone for r in rows] == ["600000001", "600000002"]


def test_chosen_by_position(tmp_path: Path) -> None:
    layout, rows = _read(_write(tmp_path, CHOICE), column="3")
    assert (layout.phone_column, layout.detected_by) == (2, "chosen")
    assert layout.header == ("Name", "Tel. dom", "Tel. praca")
    assert [r.phone for r in rows] == ["600000001", "600000002"]


def test_chosen_by_position_without_header(tmp_path: Path) -> None:
    layout, rows = _read(_write(tmp_path, "Anna;600000001\nJan;600000002\n"), column="2")
    assert (layout.header, layout.phone_column_name) == (None, "column 2")
    assert len(rows) == 2


def test_a_wrong_name_is_named_and_no_row_is_quoted(tmp_path: Path) -> None:
    path = _write(tmp_path, "Anna;600000001\nJan;600000002\n")
    with pytest.raises(CsvError, match='"Telefon"') as caught:
        _read(path, column="Telefon")
    assert "600000001" not in str(caught.value) and "Anna" not in str(caught.value)


def test_a_wrong_position_is_named(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="column 7"):
        _read(_write(tmp_path, CHOICE), column="7")
    with pytest.raises(CsvError, match="column 0"):
        _read(_write(tmp_path, CHOICE), column="0")


# -- VICIdial -------------------------------------------------------------------------


def _vicidial_row(i: int) -> list[str]:
    values = dict.fromkeys(VICIDIAL_FIELDS, "")
    values.update(
        vendor_lead_code=f"V{i:05d}",
        source_id="WEB",
        list_id="101",
        phone_code="48",
        phone_number=f"60000{i:04d}",
        first_name="Anna",
        last_name="Nowak",
        city="Kraków",
        postal_code="30-001",
        country_code="PL",
        date_of_birth="1980-01-01",
        alt_phone="221000000",
        comments="call after 5, not before",
        rank="0",
    )
    return list(values.values())


def _csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def test_vicidial_standard_format_without_header(tmp_path: Path) -> None:
    text = _csv_text([_vicidial_row(i) for i in range(1, 11)], delimiter="\t")
    layout, rows = _read(_write(tmp_path, text))
    assert layout.detected_by == "vicidial"
    assert layout.header is None
    assert (layout.phone_column, layout.region_column) == (4, 3)
    assert (rows[0].phone, rows[0].phone_code) == ("600000001", "48")
    assert len(rows) == 10 and all(len(r.fields) == 25 for r in rows)


def test_vicidial_standard_format_with_header(tmp_path: Path) -> None:
    text = _csv_text([list(VICIDIAL_FIELDS)] + [_vicidial_row(i) for i in range(1, 4)])
    layout, rows = _read(_write(tmp_path, text))
    assert layout.detected_by == "vicidial"
    assert layout.header == VICIDIAL_FIELDS
    assert (layout.phone_column, layout.region_column) == (4, 3)
    assert layout.phone_column_name == "phone_number"
    assert [(r.phone_code, r.phone) for r in rows] == [("48", f"60000{i:04d}") for i in (1, 2, 3)]


def test_vicidial_phone_number_chosen_keeps_its_phone_code(tmp_path: Path) -> None:
    text = _csv_text([list(VICIDIAL_FIELDS), _vicidial_row(1), _vicidial_row(2)])
    layout, rows = _read(_write(tmp_path, text), column="phone_number")
    assert (layout.detected_by, layout.region_column) == ("chosen", 3)
    assert rows[1].phone_code == "48"


def test_no_phone_code_outside_vicidial(tmp_path: Path) -> None:
    layout, rows = _read(_write(tmp_path, CHOICE))
    assert layout.region_column is None
    assert rows[0].phone_code == ""


# -- rows that cannot be read ---------------------------------------------------------


def test_a_bad_encoding_row_in_the_middle(tmp_path: Path) -> None:
    data = b"name;phone\r\nAnna;600000001\r\n"
    data += "Müller;600000002\r\n".encode("latin-1")  # one row saved in Latin-1
    data += "Żaneta;600000003\r\nJan;600000004\r\n".encode()
    layout, rows = _read(_write(tmp_path, data))
    assert layout.phone_column == 1
    assert [(r.number, r.problem) for r in rows] == [
        (1, None),
        (2, "bad_encoding"),
        (3, None),
        (4, None),
    ]
    assert rows[1].phone == "600000002"  # still findable in the output
    assert rows[2].fields == ("Żaneta", "600000003")
    assert rows[3].fields == ("Jan", "600000004")


def test_an_over_long_row_is_refused_and_reading_goes_on(tmp_path: Path) -> None:
    long = "x" * (MAX_ROW_BYTES + 10)
    text = f"phone,note\n600000001,a\n600000002,{long}\n600000003,c\n"
    _, rows = _read(_write(tmp_path, text))
    assert [(r.number, r.problem, r.fields) for r in rows] == [
        (1, None, ("600000001", "a")),
        (2, "too_long", ()),
        (3, None, ("600000003", "c")),
    ]
    assert rows[1].phone == ""


def test_an_unclosed_quote_cannot_swallow_the_file(tmp_path: Path) -> None:
    """A stray opening quote would make the rest of the file one field: it is cut off
    at MAX_ROW_BYTES and reading starts again at the next line."""
    lines = ["phone,note", "600000001,ok", '600000002,"never closed']
    lines += [f"6{i:08d},after" for i in range(10_000)]
    _, rows = _read(_write(tmp_path, "\n".join(lines) + "\n"))
    assert rows[1].problem == "too_long"
    assert rows[-1].fields == (f"6{9_999:08d}", "after")
    assert len(rows) < 10_000  # the lines inside the refused record are gone with it


def test_too_many_columns(tmp_path: Path) -> None:
    wide = ",".join(["x"] * (MAX_COLUMNS + 1))
    text = f"phone,note\n600000001,a\n600000002,{wide}\n600000003,c\n"
    _, rows = _read(_write(tmp_path, text))
    assert [(r.number, r.problem) for r in rows] == [(1, None), (2, "too_many_columns"), (3, None)]
    assert rows[1].fields == ()


def test_a_row_the_csv_module_refuses_is_malformed(tmp_path: Path) -> None:
    """A bare CR inside an unquoted field (a CR-only line end pasted into a cell)."""
    text = "phone,note\n600000001,a\n600000002,b\rc\n600000003,d\n"
    _, rows = _read(_write(tmp_path, text))
    assert [(r.number, r.problem) for r in rows] == [(1, None), (2, "malformed"), (3, None)]
    assert rows[2].fields == ("600000003", "d")


def test_a_malformed_first_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="first row"):
        _read(_write(tmp_path, "phone,no\rte\n600000001,a\n600000002,b\n"))


def test_a_short_row_has_no_phone(tmp_path: Path) -> None:
    _, rows = _read(_write(tmp_path, "name,phone\nAnna,600000001\nJan\nEwa,600000003\n"))
    assert [(r.fields, r.phone) for r in rows][1] == (("Jan",), "")


# -- files that are no list -----------------------------------------------------------


@pytest.mark.parametrize("data", [b"", BOM.encode(), b"\r\n\n  \n"])
def test_an_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(CsvError, match="empty"):
        _read(_write(tmp_path, data))


@pytest.mark.parametrize("text", ["Name,Phone\n", "Name;Telefon;Uwagi\r\n\r\n", "phone"])
def test_a_header_only_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(CsvError, match="no data rows"):
        _read(_write(tmp_path, text))


def test_a_header_only_file_with_a_chosen_column(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match="no data rows"):
        _read(_write(tmp_path, "Name,Phone\n"), column="Phone")


# -- the sniffer's view and the reader's agree ----------------------------------------


def test_sniffing_a_head_cut_mid_row_and_mid_character(tmp_path: Path) -> None:
    row = "Łukasz Żółć;+48 600 000 001;ul. Źródlana 5\n"
    text = "Imię;Numer telefonu;Adres\n" + row * (2 * SNIFF_BYTES // len(row.encode()))
    head = text.encode()[:SNIFF_BYTES]
    with pytest.raises(UnicodeDecodeError):
        head.decode()  # the cut falls inside a character
    layout = sniff(head)
    assert (layout.delimiter, layout.phone_column) == (";", 1)


def test_a_layout_survives_the_jobs_state_file(tmp_path: Path) -> None:
    """The manager stores `asdict(layout)` as JSON and rebuilds it on restart."""
    layout, _ = _read(_write(tmp_path, "Name;Telefon\nAnna;600000001\n"))
    stored = json.loads(json.dumps(asdict(layout)))
    assert Layout(**{**stored, "header": tuple(stored["header"])}) == layout


def test_rows_are_streamed(tmp_path: Path) -> None:
    """A 200,000-row list is read in bounded memory: nothing holds the file."""
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("Imię;Nazwisko;Numer telefonu;Uwagi\r\n")
        for i in range(200_000):
            f.write(f'Anna;Nowak-{i};+48 600 {i // 1000:03d} {i % 1000:03d};"w domu; {i}"\r\n')
    assert path.stat().st_size > 8 * 1024 * 1024
    tracemalloc.start()
    try:
        layout, count, last = None, 0, None
        with path.open("rb") as f:
            layout = sniff(f.read(SNIFF_BYTES))
            f.seek(0)
            for row in read_rows(f, layout):
                count += 1
                last = row
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert layout.detected_by == "header:numer_telefonu"
    assert count == 200_000
    assert last is not None and last.number == 200_000
    assert last.fields == ("Anna", "Nowak-199999", "+48 600 199 999", "w domu; 199999")
    assert peak < 3 * 1024 * 1024, peak


# -- properties -----------------------------------------------------------------------

_CHARS = st.sampled_from(list("ab Z09,;\t\"\n\r'óŁß€\u00a0😀"))
_FIELD = st.text(_CHARS, max_size=12)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    delimiter=st.sampled_from([",", ";", "\t"]),
    rows=st.lists(st.lists(_FIELD, min_size=1, max_size=4), min_size=1, max_size=15),
    crlf=st.booleans(),
    bom=st.booleans(),
)
def test_any_fields_written_by_csv_come_back_exactly(
    tmp_path_factory: pytest.TempPathFactory,
    delimiter: str,
    rows: list[list[str]],
    crlf: bool,
    bom: bool,
) -> None:
    """Whatever a CRM puts in a field (delimiters, quotes, line breaks, any script),
    the row comes back as it was written. The layout is given: a tiny file of random
    fields can be truly ambiguous ("600000001<TAB>," splits on either)."""
    written = [[f"+48 600 {i:03d} 001", *r] for i, r in enumerate(rows)]
    if not crlf:  # csv.writer quotes a lone CR only when CR ends its lines
        written = [[f.replace("\r", "") for f in r] for r in written]
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n").writerows(written)
    path = _write(tmp_path_factory.mktemp("prop"), (BOM if bom else "") + out.getvalue())
    layout = Layout(delimiter, None, 0, "column 1", "chosen", bom=bom)
    with path.open("rb") as f:
        got = list(read_rows(f, layout))
    assert [list(r.fields) for r in got] == written
    assert [r.number for r in got] == list(range(1, len(written) + 1))
    assert all(r.problem is None and r.phone == r.fields[0] for r in got)


_PIECES = st.sampled_from(
    [
        *(b",", b";", b"\t", b'"', b"\n", b"\r\n", b"\r", b"600000001", b"+48 600 000 001"),
        *(b"a", b"Phone", b"Name", b" ", b"\xff", b"\xc3", b"\xc3\xb3", b"\xef\xbb\xbf"),
    ]
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=60), column=st.sampled_from([None, "1"]))
def test_any_bytes_give_a_layout_or_a_csv_error_and_rows_in_order(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[bytes], column: str | None
) -> None:
    """An upload can be anything: the job either refuses it with a reason or reads
    every row, numbered without gaps; it never fails halfway."""
    path = _write(tmp_path_factory.mktemp("bytes"), b"".join(pieces))
    try:
        _, rows = _read(path, column)
    except CsvError:
        return
    assert [r.number for r in rows] == list(range(1, len(rows) + 1))
