"""The options of ``pamlib score`` that users expect on Spark give what they give there: the NHS
number kept, its keyed pseudonym, other delimiters and encodings — every scored column and every
reject equal to ``pamlib score``'s, and no identifier in what pamlib says."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from pamlib import synthetic
from pamlib.errors import ConfigurationError
from pamlib.formats.base import ReadOptions
from pamlib.pipeline import ScoreRun, TableScorer
from pamlib.tables.keys import Pseudonymiser
from tests.spark.exports import MAPPING, Export, make_export

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

KEYS = ("source_file", "source_row")


def _pamlib_score(export: Export, settings: dict[str, str] | None = None, **kw: Any) -> ScoreRun:
    """What ``pamlib score`` reads, checks and scores (its reader, into memory)."""
    options = ReadOptions(settings=settings or {})
    return TableScorer(mapping=MAPPING, options=options, **kw).score_source(export.path)


def _assert_equal(run: Any, expected: ScoreRun, export: Export) -> list[dict[str, Any]]:
    row_of = {line: n for n, line in enumerate(export.lines, start=1)}
    scored = [r.asDict(recursive=True) for r in run.scored.orderBy("source_row").collect()]
    rejects = sorted((r["row"], r["code"], r["message"]) for r in run.rejects.collect())
    assert rejects == sorted(
        (row_of[r["row"]], r["code"], r["message"]) for r in expected.rejects.to_pylist()
    )
    assert [{k: v for k, v in r.items() if k not in KEYS} for r in scored] == (
        expected.scored.to_arrow().to_pylist()
    )
    summary = run.summary()
    assert summary.reconciles
    assert summary.reconciliation == expected.summary.reconciliation
    assert summary.rejected_by_code == expected.summary.rejected_by_code
    return scored


@pytest.fixture(scope="module")
def nhs_export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("spark-nhs"), nhs_numbers=True, seed=21)


def test_the_nhs_number_and_its_pseudonym_as_pamlib_score_gives_them(
    spark: Any, nhs_export: Export
) -> None:
    import pamlib.spark as ps

    key = secrets.token_bytes(32)
    pseudonymiser = Pseudonymiser(key)
    df = ps.read_export(spark, str(nhs_export.path), mapping=MAPPING, multiline=True)
    run = ps.score(df, provider="demo", keep_nhs_number=True, pseudonymiser=pseudonymiser)
    expected = _pamlib_score(
        nhs_export, provider="demo", keep_nhs_number=True, pseudonymiser=pseudonymiser
    )
    scored = _assert_equal(run, expected, nhs_export)
    columns = run.scored.columns
    assert columns.index("nhs_number") + 1 == columns.index("nhs_pseudonym")
    assert columns[-2:] == list(KEYS)
    numbers = [r["nhs_number"] for r in scored]
    assert all(n is None or n == "" or (len(n) == 10 and n.isdigit()) for n in numbers)
    spaced = {synthetic.test_nhs_number(i % 500 + 1) for i in range(5, 240, 5) if i % 7}
    assert spaced & set(numbers)  # written "999 000 011 5", kept normalised
    assert any(n == "" or n is None for n in numbers)
    assert all((p or "").startswith("hmac-sha256:") for p, n in
               ((r["nhs_pseudonym"], r["nhs_number"]) for r in scored) if n)  # fmt: skip
    assert "nhs-number" in run.summary().rejected_by_code  # the wrong check digit
    # the key is in no repr, and no number is either
    for text in (repr(run), str(run.summary()), repr(pseudonymiser)):
        assert key.hex() not in text
        assert not any(n and n in text for n in numbers)
    run.unpersist()


def test_without_the_options_no_identity_column(spark: Any, nhs_export: Export) -> None:
    import pamlib.spark as ps

    df = ps.read_export(spark, str(nhs_export.path), mapping=MAPPING)
    run = ps.score(df, provider="demo")
    assert "nhs_number" not in run.scored.columns
    assert "nhs_pseudonym" not in run.scored.columns
    _assert_equal(run, _pamlib_score(nhs_export, provider="demo"), nhs_export)
    run.unpersist()


@pytest.mark.parametrize(
    ("delimiter", "encoding", "given"),
    [
        (";", "utf-8", {}),  # found in the header, as pamlib score finds it
        ("\t", "utf-8", {"delimiter": "tab"}),  # given, as --delimiter tab
        (",", "cp1252", {"encoding": "cp1252"}),  # given, as --encoding cp1252
        (";", "latin-1", {"encoding": "latin-1", "delimiter": ";"}),
    ],
)
def test_other_delimiters_and_encodings_as_pamlib_score_reads_them(
    spark: Any, tmp_path: Path, delimiter: str, encoding: str, given: dict[str, str]
) -> None:
    import pamlib.spark as ps

    export = make_export(tmp_path, n=90, seed=9, delimiter=delimiter, encoding=encoding)
    legacy = encoding == "cp1252"  # Spark 4 reads it only with Java's whole list of encodings
    if legacy:
        with pytest.raises(ConfigurationError, match="javaCharsets"):
            ps.read_export(spark, str(export.path), mapping=MAPPING, encoding=encoding)
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    try:
        df = ps.read_export(
            spark,
            str(export.path),
            mapping=MAPPING,
            delimiter=given.get("delimiter"),
            encoding=given.get("encoding"),
        )
        run = ps.score(df, provider="demo")
        run.summary()
    finally:
        if legacy:
            spark.conf.unset("spark.sql.legacy.javaCharsets")
    settings = {"encoding": given["encoding"]} if "encoding" in given else {}
    scored = _assert_equal(run, _pamlib_score(export, settings, provider="demo"), export)
    assert {r["site"] for r in scored} >= {"site-é0", "site-é1"}
    run.unpersist()


def test_a_delimiter_or_encoding_pamlib_cannot_use_stops_on_the_driver(
    spark: Any, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    export = make_export(tmp_path, n=70, seed=2)
    with pytest.raises(ConfigurationError, match="delimiter"):
        ps.read_export(spark, str(export.path), delimiter='"')
    with pytest.raises(ConfigurationError, match="unknown encoding"):
        ps.read_export(spark, str(export.path), encoding="no-such-codec")
    with pytest.raises(ConfigurationError, match="javaCharsets"):
        ps.read_export(spark, str(export.path), encoding="mac-arabic")
    with pytest.raises(ConfigurationError, match="multiline=True"):
        ps.read_export(spark, str(export.path), encoding="utf-16", multiline=False)


@pytest.mark.parametrize(
    ("encoding", "byte"),
    [
        ("utf-8", b"\xff"),  # never valid in UTF-8: rejected on both
        ("latin-1", b"\x80"),  # a cp1252 byte (the euro sign) read as latin-1: a character
        ("cp1252", b"\x81"),  # no character in cp1252: rejected on both
    ],
)
def test_a_byte_not_valid_in_the_encoding_read_is_rejected_as_pamlib_score_rejects_it(
    spark: Any, tmp_path: Path, encoding: str, byte: bytes
) -> None:
    import pamlib.spark as ps

    export = make_export(tmp_path, n=90, seed=5, encoding=encoding)
    data = export.path.read_bytes()
    assert data.count(b"A00012,") == 1
    export.path.write_bytes(data.replace(b"A00012,", b"A00012" + byte + b","))
    legacy = encoding == "cp1252"
    if legacy:
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    try:
        df = ps.read_export(spark, str(export.path), mapping=MAPPING, encoding=encoding)
        run = ps.score(df, provider="demo")
        run.summary()
    finally:
        if legacy:
            spark.conf.unset("spark.sql.legacy.javaCharsets")
    expected = _pamlib_score(export, {"encoding": encoding}, provider="demo")
    _assert_equal(run, expected, export)
    rejected = {r["row"]: r for r in run.rejects.collect()}
    if encoding == "latin-1":
        assert 12 not in rejected
    else:
        assert rejected[12]["code"] == "encoding"
        assert "A00012" not in rejected[12]["message"]  # the message names no value
    run.unpersist()


def test_a_replacement_character_in_a_valid_file_is_rejected_on_spark(
    spark: Any, tmp_path: Path
) -> None:
    """The documented difference: ``pamlib score`` scores it, Spark cannot tell it from a
    byte it replaced, and an export holding one was mis-decoded somewhere."""
    import pamlib.spark as ps

    export = make_export(tmp_path, n=70, seed=3)
    data = export.path.read_bytes()
    export.path.write_bytes(data.replace(b"A00012,", "A00012\ufffd,".encode()))
    run = ps.score(ps.read_export(spark, str(export.path), mapping=MAPPING), provider="demo")
    expected = _pamlib_score(export, provider="demo")
    row_of = {line: n for n, line in enumerate(export.lines, start=1)}
    assert 12 not in {row_of[r["row"]] for r in expected.rejects.to_pylist()}
    assert (12, "encoding") in {(r["row"], r["code"]) for r in run.rejects.collect()}
    summary = run.summary()
    assert summary.reconciles
    assert summary.n_rejected == expected.summary.n_rejected + 1
    run.unpersist()


@pytest.mark.parametrize("encoding", [None, "utf-8"], ids=["found", "given"])
def test_files_whose_headers_differ_are_refused_naming_them(
    spark: Any, tmp_path: Path, encoding: str | None
) -> None:
    """Spark reads every file's columns by the first file's header: a file with its columns in
    another order would be scored with one column's values taken for another's."""
    import gzip

    import pamlib.spark as ps

    text = make_export(tmp_path, n=80).path.read_text(encoding="utf-8")
    header, _, rest = text.partition("\n")
    names = header.split(",")
    swapped = ",".join([names[1], names[0], *names[2:]])
    folder = tmp_path / "sites"
    folder.mkdir()
    (folder / "a.csv").write_text(text, encoding="utf-8")
    (folder / "b.csv").write_text(f'"{header.replace(",", chr(34) + "," + chr(34))}"\n{rest}')
    (folder / "c.csv.gz").write_bytes(gzip.compress(text.encode()))
    (folder / "d.csv").write_bytes(b"")
    df = ps.read_export(spark, str(folder), mapping=MAPPING, encoding=encoding)  # same names
    assert ps.score(df, provider="demo").summary().n_read == 3 * 80
    (folder / "e site 5.csv").write_text(f"{swapped}\n{rest}", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"do not share one header: e site 5\.csv differ"):
        ps.read_export(spark, str(folder), mapping=MAPPING, encoding=encoding)
