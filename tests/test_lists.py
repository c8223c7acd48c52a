"""Do-not-call lists from real registry files, in real list files on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hlrd.compliance.list_formats import ReadOptions
from hlrd.compliance.list_key import ListKeyer
from hlrd.compliance.lists import ListError, ListFiles, Lists
from hlrd.compliance.number_set import NumberSet

SECRET = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def files(tmp_path: Path, clock: Clock) -> ListFiles:
    return ListFiles(tmp_path / "lists", ListKeyer(SECRET), clock)


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _listed(files: ListFiles, name: str, *numbers: str) -> list[bool]:
    loaded = files.load(name)
    assert loaded is not None
    return [files.keyer.key(n) in loaded.numbers for n in numbers]


def test_the_keyer_keys_a_batch_as_it_keys_one_and_depends_on_the_secret() -> None:
    k = ListKeyer(SECRET)
    numbers = ["447700900123", "12025550123", "393471234567", "48600000001"]
    assert list(k.keys(numbers)) == [k.key(n) for n in numbers]
    assert len(set(k.keys(numbers))) == 4
    assert ListKeyer(bytes(32)).key(numbers[0]) != k.key(numbers[0])
    assert k.key("4477") != k.key("44770")  # the padding cannot be mistaken for a digit


def test_a_number_set_finds_what_it_holds_and_nothing_else() -> None:
    keys = [((i * 0x9E3779B97F4A7C15) & (2**64 - 1)) for i in range(1, 50_001)]
    s = NumberSet.build(keys + keys[:100])  # repeats count once
    assert len(s) == 50_000
    assert all(k in s for k in keys[::97])
    absent = [k ^ 1 for k in keys[::97]]
    assert not any(k in s for k in absent)
    assert s.contains_each([keys[0], absent[0], keys[-1]]) == [True, False, True]
    assert NumberSet.from_bytes(s.to_bytes()).contains_each(keys[:3]) == [True] * 3
    assert 0 not in NumberSet.build([]) and len(NumberSet.build([])) == 0


def test_one_number_a_line_national_numbers_in_the_region(files: ListFiles, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "own.txt",
        "# our own do-not-call list\n601 234 567\n+48 602-345-678\n0048603456789\n\nnot a number\n",
    )
    info = files.import_file("own", path, ReadOptions("lines", region="PL"))
    assert (info.rows, info.invalid, info.numbers, info.max_age_days) == (4, 1, 3, None)
    assert _listed(files, "own", "48601234567", "48602345678", "48603456789", "48604000000") == [
        True,
        True,
        True,
        False,
    ]


def test_a_csv_with_a_bom_semicolons_and_a_named_column(files: ListFiles, tmp_path: Path) -> None:
    text = '\ufeffimie;telefon;zgoda\nAnna;601234567;nie\nJan;"602 345 678";nie\nEwa;;nie\n'
    path = _write(tmp_path, "robinson.csv", text.encode("utf-8"))
    info = files.import_file("robinson", path, ReadOptions("csv", region="PL", column="Telefon"))
    assert (info.rows, info.invalid, info.numbers) == (3, 1, 2)
    assert _listed(files, "robinson", "48601234567", "48602345678") == [True, True]


def test_a_csv_without_a_header_by_position(files: ListFiles, tmp_path: Path) -> None:
    path = _write(tmp_path, "dnc.tsv", "x\t601234567\ny\t602345678\n")
    info = files.import_file("dnc", path, ReadOptions("csv", region="PL", column="2"))
    assert info.numbers == 2 and _listed(files, "dnc", "48601234567") == [True]


def test_uk_tps_fixed_records_one_a_line_or_back_to_back(files: ListFiles, tmp_path: Path) -> None:
    records = ["07700900123 ", "02079460000 ", "01632960001 "]
    a = files.import_file(
        "tps", _write(tmp_path, "tps.txt", "\r\n".join(records)), ReadOptions("tps")
    )
    b = files.import_file(
        "ctps", _write(tmp_path, "ctps.dat", "".join(records)), ReadOptions("tps")
    )
    assert a.numbers == b.numbers == 3 and a.max_age_days == 28
    assert _listed(files, "ctps", "447700900123", "442079460000", "441632960001") == [True] * 3
    # The "with spaces" layout: a 5-character dialling code, a 7-character remainder
    # (the TPS's own examples, docs/registries.md).
    spaced = _write(tmp_path, "spaced.txt", "0207 3787244\r\n07860 338653\r\n01635 506160\r\n")
    c = files.import_file("tps_spaced", spaced, ReadOptions("tps"))
    assert (c.numbers, c.invalid) == (3, 0)
    assert (
        _listed(files, "tps_spaced", "442073787244", "447860338653", "441635506160") == [True] * 3
    )


def test_us_ftc_full_list_and_its_change_lists(files: ListFiles, tmp_path: Path) -> None:
    full = _write(tmp_path, "full.txt", "202,5550123\n212,5550188\n3055550100\n")
    info = files.import_file("us", full, ReadOptions("us_ftc"), version="2026-11-01")
    assert (info.numbers, info.max_age_days, info.version) == (3, 31, "2026-11-01")
    adds = _write(tmp_path, "adds.txt", "415,5550111\n")
    deletes = _write(tmp_path, "deletes.txt", "212,5550188\n")
    files.import_file("us", adds, ReadOptions("us_ftc"), change="add", version="2026-11-02")
    after = files.import_file("us", deletes, ReadOptions("us_ftc"), change="delete")
    assert (after.numbers, after.changes, after.version) == (3, 2, "2026-11-02")
    assert after.imported_at == info.imported_at  # a change list does not make it fresh
    assert _listed(files, "us", "12025550123", "12125550188", "14155550111", "13055550100") == [
        True,
        False,
        True,
        True,
    ]
    with pytest.raises(ListError, match="import it in full first"):
        files.import_file("us2", adds, ReadOptions("us_ftc"), change="add")


def test_italys_rpo_returned_file_lists_only_the_registered(
    files: ListFiles, tmp_path: Path
) -> None:
    path = _write(tmp_path, "esito.csv", "3471234567;1\n3479876543;0\n0612345678;S\n")
    info = files.import_file("rpo", path, ReadOptions("rpo"))
    assert (info.numbers, info.max_age_days) == (2, 15)
    assert _listed(files, "rpo", "393471234567", "393479876543", "390612345678") == [
        True,
        False,
        True,
    ]


def test_a_list_older_than_its_limit_is_stale(
    files: ListFiles, tmp_path: Path, clock: Clock
) -> None:
    info = files.import_file("tps", _write(tmp_path, "t", "07700900123\n"), ReadOptions("tps"))
    assert not info.stale(clock.now + 28 * 86400)
    assert info.stale(clock.now + 28 * 86400 + 1)


def test_a_reimport_swaps_the_whole_list_and_leaves_no_old_file(
    files: ListFiles, tmp_path: Path
) -> None:
    files.import_file("own", _write(tmp_path, "a", "601234567\n"), ReadOptions("lines"))
    lists = Lists(files.load_all())
    before = lists.hits(files.keyer.key("48601234567"))
    files.import_file("own", _write(tmp_path, "b", "602345678\n"), ReadOptions("lines"))
    still = lists.hits(files.keyer.key("48601234567"))  # nothing changed under a reader
    lists.replace(files.load_all())
    assert (before, still) == (["own"], ["own"])
    assert lists.hits(files.keyer.key("48601234567")) == []
    assert lists.hits(files.keyer.key("48602345678")) == ["own"]
    assert len(list(files.directory.glob("own.*.keys"))) == 1


def test_an_import_cut_short_before_its_description_leaves_the_old_list(
    files: ListFiles, tmp_path: Path
) -> None:
    """The keys file is written first and the description replaced in one rename: a
    crash between them (simulated: a stray new keys file) changes nothing."""
    files.import_file("own", _write(tmp_path, "a", "601234567\n"), ReadOptions("lines"))
    (files.directory / "own.deadbeef0000.keys").write_bytes(b"\0" * 8)
    assert _listed(files, "own", "48601234567") == [True]


def test_a_list_written_under_another_key_is_refused(files: ListFiles, tmp_path: Path) -> None:
    files.import_file("own", _write(tmp_path, "a", "601234567\n"), ReadOptions("lines"))
    other = ListFiles(files.directory, ListKeyer(bytes(32)))
    with pytest.raises(ListError, match="another hash key"):
        other.load("own")


def test_the_list_files_hold_no_number(files: ListFiles, tmp_path: Path) -> None:
    numbers = [f"60{i:07d}" for i in range(2000)]
    files.import_file("own", _write(tmp_path, "a", "\n".join(numbers)), ReadOptions("lines"))
    for path in files.directory.iterdir():
        data = path.read_bytes()
        assert path.stat().st_mode & 0o077 == 0
        for n in numbers[::50]:
            for form in (n, "48" + n, (48 * 10**9 + int(n)).to_bytes(8, "big")):
                assert (form.encode() if isinstance(form, str) else form) not in data


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("Own List", ReadOptions("lines"), "is not a list name"),
        ("own", ReadOptions("xml"), "format: one of"),
        ("own", ReadOptions("lines", region="XX"), "region: 'XX'"),
        ("own", ReadOptions("csv", column="phone"), "no column named 'phone'"),
    ],
)
def test_an_import_that_cannot_work_says_why(
    files: ListFiles, tmp_path: Path, name: str, options: ReadOptions, fragment: str
) -> None:
    path = _write(tmp_path, "a.csv", "telefon\n601234567\n")
    with pytest.raises(ListError, match=fragment.replace("(", r"\(")):
        files.import_file(name, path, options)


def test_a_missing_file_is_named(files: ListFiles, tmp_path: Path) -> None:
    with pytest.raises(ListError, match=r"nothing\.txt"):
        files.import_file("own", tmp_path / "nothing.txt", ReadOptions("lines"))
    assert json.dumps(files.names()) == "[]" and not os.path.exists(files.directory / "own.json")


def _hlrd(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    from .conftest import ROOT

    config = tmp_path / "hlrd.toml"
    config.write_text('[[upstream.providers]]\nname = "sim"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "hlrd", "lists", *args, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_hlrd_lists_imports_shows_and_removes_as_an_operator_runs_it(tmp_path: Path) -> None:
    tps = _write(tmp_path, "tps.txt", "07700900123 \n02079460000 \nbad record  \n")
    code, out, _ = _hlrd(tmp_path, "import", "tps", str(tps), "--format", "tps", "--version", "v7")
    imported = json.loads(out)
    assert code == 0
    assert {k: imported[k] for k in ("name", "version", "rows", "invalid", "numbers", "stale")} == {
        "name": "tps",
        "version": "v7",
        "rows": 3,
        "invalid": 1,
        "numbers": 2,
        "stale": False,
    }
    code, out, _ = _hlrd(tmp_path, "show")
    assert code == 0 and [x["name"] for x in json.loads(out)["lists"]] == ["tps"]
    assert "07700900123" not in out
    code, _, err = _hlrd(tmp_path, "import", "Bad Name", str(tps))
    assert code == 2 and "is not a list name" in err
    code, out, _ = _hlrd(tmp_path, "remove", "tps")
    assert code == 0 and json.loads(_hlrd(tmp_path, "show")[1]) == {"lists": []}


@pytest.mark.parametrize(
    "raw",
    ["601234567", " 601234567 ", "+48601234567", "0048601234567", "601-234-567", "(601) 234 567"],
)
def test_a_batch_reads_every_spelling_as_one_at_a_time_does(raw: str) -> None:
    from hlrd.compliance.numbers_in import NationalNumbers

    pl = NationalNumbers("PL")
    assert pl.e164_many([raw, "²³⁴", "12"]) == [pl.e164(raw), None, None]
    assert pl.e164(raw) == "48601234567"
