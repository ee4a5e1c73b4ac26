"""Without ``encoding=``, :func:`pamlib.spark.read_export` finds an export's encoding as ``pamlib
score`` finds it (byte-order marks, UTF-8, cp1252 or latin-1) and reads what it finds: every
scored column and reject equal to ``pamlib score``'s; where ``pamlib score`` stops, so does it,
with the same error."""

from __future__ import annotations

import codecs
import gzip
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from pamlib.errors import ConfigurationError, FormatError
from tests.spark.exports import MAPPING, Export, make_export
from tests.spark.test_spark_options import _assert_equal, _pamlib_score

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")

#: How each export is written: the codec, and a byte-order mark put before it.
WRITTEN = {
    "utf-8": ("utf-8", b""),
    "utf-8 with BOM": ("utf-8-sig", b""),  # the codec writes the mark
    "utf-16 LE with BOM": ("utf-16-le", codecs.BOM_UTF16_LE),
    "utf-16 BE with BOM": ("utf-16-be", codecs.BOM_UTF16_BE),
    "utf-32 LE with BOM": ("utf-32-le", codecs.BOM_UTF32_LE),
    "utf-32 BE with BOM": ("utf-32-be", codecs.BOM_UTF32_BE),
    "latin-1": ("latin-1", b""),
    "cp1252": ("cp1252", b""),
}
#: What ``pamlib score`` finds each to be.
FOUND = {
    "utf-8": "utf-8",
    "utf-8 with BOM": "utf-8",
    "utf-16 LE with BOM": "utf-16",
    "utf-16 BE with BOM": "utf-16",
    "utf-32 LE with BOM": "utf-32",
    "utf-32 BE with BOM": "utf-32",
    "latin-1": "iso8859-1",
    "cp1252": "cp1252",
}


def _written(folder: Path, how: str, *, name: str = "export.csv", seed: int = 4) -> Export:
    codec, bom = WRITTEN[how]
    export = make_export(folder, n=80, seed=seed, name=name, encoding=codec)
    data = export.path.read_bytes()
    if how == "cp1252":  # a euro sign: a byte in 0x80-0x9F, so cp1252 and not latin-1
        assert data.count(b"called back") == 1
        data = data.replace(b"called back", b"called back \x80", 1)
    export.path.write_bytes(bom + data)
    return export


@pytest.fixture
def legacy_charsets(spark: Any) -> Any:
    """Spark 4 reads cp1252 only with Java's whole list of encodings allowed."""
    spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    yield spark
    spark.conf.unset("spark.sql.legacy.javaCharsets")


@pytest.mark.parametrize("how", list(WRITTEN))
def test_the_encoding_is_found_as_pamlib_score_finds_it(
    spark: Any,
    tmp_path: Path,
    how: str,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import pamlib.spark as ps

    if how == "cp1252":
        request.getfixturevalue("legacy_charsets")
    export = _written(tmp_path, how)
    with caplog.at_level(logging.WARNING, logger="pamlib.spark"):
        df = ps.read_export(spark, str(export.path), mapping=MAPPING)
    assert ps._described(df)["encoding"] == FOUND[how]
    guessed = how in ("latin-1", "cp1252")  # a guess is said, as pamlib score notes it
    assert (f"read export.csv as {how} (not UTF-8)" in caplog.text) == guessed
    run = ps.score(df, provider="demo")
    scored = _assert_equal(run, _pamlib_score(export, provider="demo"), export)
    if how != "utf-8":
        assert {r["site"] for r in scored} >= {"site-é0", "site-é1"}
    if how == "cp1252":
        assert any("called back €" in (r["notes"] or "") for r in scored)
    run.unpersist()


def test_an_encoding_given_still_wins(spark: Any, tmp_path: Path) -> None:
    import pamlib.spark as ps

    export = _written(tmp_path, "latin-1")  # found to be latin-1; read as UTF-8 when told
    df = ps.read_export(spark, str(export.path), mapping=MAPPING, encoding="utf-8")
    assert ps._described(df)["encoding"] == "utf-8"
    run = ps.score(df, provider="demo")
    expected = _pamlib_score(export, {"encoding": "utf-8"}, provider="demo")
    _assert_equal(run, expected, export)
    assert run.summary().rejected_by_code["encoding"] > 0
    run.unpersist()


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("utf-16 without a byte-order mark", "utf-16-le"),
        ("UTF-8 and another encoding", b"\xc3\xa9 and \xe9"),
        ("a byte no character in cp1252", b"\x81"),
    ],
)
def test_where_pamlib_score_cannot_tell_the_encoding_neither_can_spark(
    spark: Any, tmp_path: Path, what: str, data: str | bytes
) -> None:
    import pamlib.spark as ps

    if isinstance(data, str):
        export = make_export(tmp_path, n=70, seed=6, encoding=data)
    else:
        export = make_export(tmp_path, n=70, seed=6)
        text = export.path.read_bytes()
        export.path.write_bytes(text.replace(b"called back", b"called back " + data, 1))
    with pytest.raises(FormatError) as found:
        _pamlib_score(export, provider="demo")
    with pytest.raises(FormatError) as error:
        ps.read_export(spark, str(export.path), mapping=MAPPING)
    assert error.value.summary == (
        "cannot tell the encoding of export.csv; give it with encoding='NAME'"
    )
    assert [(p.where, p.code) for p in error.value.problems] == [
        (p.where, p.code) for p in found.value.problems
    ]
    # the same reason, telling how to give the encoding here
    why = re.sub(r"--encoding ([\w-]+)", r"encoding='\1'", found.value.problems[0].message)
    assert error.value.problems[0].message == why
    assert "called back" not in str(error.value)  # no value of the export


def test_an_encoding_found_that_spark_refuses_stops_on_the_driver(
    spark: Any, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    export = _written(tmp_path, "cp1252")
    with pytest.raises(ConfigurationError, match=r"found to be cp1252.*javaCharsets"):
        ps.read_export(spark, str(export.path), mapping=MAPPING)
    with pytest.raises(ConfigurationError, match=r"found to be utf-16.*multiline=True"):
        ps.read_export(
            spark, str(_written(tmp_path, "utf-16 LE with BOM", name="w.csv").path), multiline=False
        )


def test_files_of_one_export_read_in_the_encoding_that_reads_them_all(
    spark: Any, tmp_path: Path, legacy_charsets: Any
) -> None:
    """ASCII-only files read the same in any of these encodings, latin-1 ones the same in
    cp1252: a folder of such files is read in the one encoding; files that differ are refused,
    named, with what to do."""
    import pamlib.spark as ps

    def found(folder: Path) -> str:
        described = ps._described(ps.read_export(spark, str(folder), mapping=MAPPING))
        return str(described["encoding"])

    both = tmp_path / "latin-1 and cp1252"
    both.mkdir()
    _written(both, "latin-1", name="a.csv")
    _written(both, "cp1252", name="b.csv", seed=5)
    assert found(both) == "cp1252"

    ascii_and_latin = tmp_path / "ascii and latin-1"
    ascii_and_latin.mkdir()
    _written(ascii_and_latin, "utf-8", name="a.csv")  # ASCII only
    latin = _written(ascii_and_latin, "latin-1", name="b.csv", seed=5)
    with gzip.open(latin.path.with_suffix(".csv.gz"), "wb") as packed:  # read as Spark reads it
        packed.write(latin.path.read_bytes())
    latin.path.unlink()
    assert found(ascii_and_latin) == "iso8859-1"

    mixed = tmp_path / "utf-8 and cp1252"
    mixed.mkdir()
    _written(mixed, "utf-8 with BOM", name="a 1.csv")
    _written(mixed, "cp1252", name="b.csv", seed=5)
    with pytest.raises(ConfigurationError, match="different encodings") as error:
        found(mixed)
    assert "cp1252: b.csv; utf-8: a 1.csv" in str(error.value)
    shutil.rmtree(mixed)


def test_the_heads_of_many_files_are_read_at_once_and_kept_in_name_order(
    spark: Any, tmp_path: Path
) -> None:
    """More files than the driver reads at once, one of them packed: each head is its own
    file's start, in name order."""
    import pamlib.spark as ps

    folder = tmp_path / "many"
    folder.mkdir()
    texts = {}
    for i in range(2 * ps._HEAD_THREADS + 3):
        text = f"a,b\n{i},{'x' * i}\n".encode()
        name = f"site-{i:02d}.csv"
        if i == 5:
            name += ".gz"
            (folder / name).write_bytes(gzip.compress(text))
        else:
            (folder / name).write_bytes(text)
        texts[name] = text
    heads = ps._file_heads(spark, ps._check_listing(spark, str(folder)))
    assert [uri.rsplit("/", 1)[1] for uri, _ in heads] == sorted(texts)
    assert [head for _, head in heads] == [texts[n] for n in sorted(texts)]


def test_a_head_holds_the_file_s_own_bytes_whatever_they_are(spark: Any, tmp_path: Path) -> None:
    """Each head crosses from the JVM as text, a character a byte: every byte value, line
    breaks and backslashes (which Py4J escapes) included, comes back as it was, and no more
    than the first :data:`~pamlib.spark._HEAD_BYTES` of a longer file."""
    import random

    import pamlib.spark as ps

    every = bytes(range(256)) * 3 + b"\\n\r\n\\\n"
    noise = random.Random(5).randbytes(ps._HEAD_BYTES)  # noqa: S311 - test data
    short, long = tmp_path / "short.bin", tmp_path / "long.bin"
    short.write_bytes(every)
    long.write_bytes(every + noise)

    def head(path: Path) -> bytes:
        return bytes(ps._file_heads(spark, ps._check_listing(spark, str(path)))[0][1])

    assert head(short) == every
    assert head(long) == (every + noise)[: ps._HEAD_BYTES]
