"""An export given as a folder is read whole or refused: Spark reads the files in a folder and
in its partition folders (``site=A/``) but skips every other subfolder without a word, and
stops with an error of its own on folders of both kinds. pamlib lists the folder on the driver
first and refuses an export Spark would read only part of, naming what it would leave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pamlib.errors import FormatError, PamlibError
from tests.spark.exports import MAPPING, make_export

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j")


def _export(root: Path, *names: str) -> Path:
    for seed, name in enumerate(names, start=11):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        make_export(target.parent, n=120, seed=seed, name=target.name, quotes=False)
    return root


def _n_read(spark: Any, path: str) -> int:
    import pamlib.spark as ps

    df = ps.read_export(spark, path, mapping=MAPPING, multiline=False)
    return ps.score(df, provider="demo", duplicates="off").summary().n_read


def test_a_file_in_a_subfolder_is_not_left_unread(spark: Any, tmp_path: Path) -> None:
    import pamlib.spark as ps

    root = _export(tmp_path, "a.csv", "2024/b.csv", "2024/c.csv", "2025/9434765919.csv")
    with pytest.raises(FormatError, match="3 are there") as caught:
        ps.read_export(spark, str(root), mapping=MAPPING)
    message = str(caught.value)
    assert "(2024/b.csv, 2024/c.csv, 2025/<NHS number>.csv)" in message
    assert "9434765919" not in message  # a name holding an NHS number is withheld
    # the pattern the message suggests reads them, and the root's file with them
    assert _n_read(spark, str(root / "*" / "*.csv")) == 3 * 120
    assert _n_read(spark, str(root / "{,*/}*.csv")) == 4 * 120


def test_a_pattern_matching_a_folder_reads_its_subfolders_too(spark: Any, tmp_path: Path) -> None:
    import pamlib.spark as ps

    root = _export(tmp_path, "a.csv", "more/b.csv", *(f"more/deeper/{n}.csv" for n in "cdef"))
    with pytest.raises(FormatError, match="4 are there") as caught:
        ps.read_export(spark, str(root / "*"), mapping=MAPPING)  # more/ read, its deeper/ not
    assert "(deeper/c.csv, deeper/d.csv, deeper/e.csv and 1 more)" in str(caught.value)


def test_partition_folders_are_read_and_hidden_ones_skipped(spark: Any, tmp_path: Path) -> None:
    root = _export(tmp_path, "site=A/a.csv", "site=B/b.csv", "_old/c.csv", ".cache/d.csv")
    (root / "_SUCCESS").write_bytes(b"")
    assert _n_read(spark, str(root)) == 2 * 120


def test_folders_spark_cannot_read_as_one_are_refused_as_pamlib_s_error(
    spark: Any, tmp_path: Path
) -> None:
    import pamlib.spark as ps

    root = _export(tmp_path, "a.csv", "site=A/b.csv", "other/c.csv")
    with pytest.raises(PamlibError, match="cannot read these files as one export") as caught:
        ps.read_export(spark, str(root), mapping=MAPPING)
    assert isinstance(caught.value, FormatError)


class _HdfsLike:
    """A file system that renames as HDFS does (a folder renamed onto one that exists goes
    inside it), and on whose rename ``final`` has just been made by another writer."""

    def __init__(self, real: Any, jvm: Any) -> None:
        self._real, self._jvm = real, jvm

    def rename(self, source: Any, target: Any) -> bool:
        self._real.mkdirs(target)  # another writer, between pamlib's look and its rename
        inside = self._jvm.org.apache.hadoop.fs.Path(target, source.getName())
        return bool(self._real.rename(source, inside))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_an_output_made_by_another_writer_meanwhile_is_not_taken_for_pamlib_s(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HDFS moves a folder renamed onto an existing one into it: ``write`` reported success
    with its output hidden inside a folder someone else made. It now takes it away again."""
    import pamlib.spark as ps
    from pamlib.errors import ConfigurationError

    root = _export(tmp_path / "in", "a.csv")
    run = ps.score(ps.read_export(spark, str(root), mapping=MAPPING), provider="demo")
    real = ps.SparkRun._write_under

    def racing(self: Any, jvm: Any, fs: Any, *rest: Any) -> Any:
        return real(self, jvm, _HdfsLike(fs, jvm), *rest)

    monkeypatch.setattr(ps.SparkRun, "_write_under", racing)
    target = tmp_path / "out"
    with pytest.raises(ConfigurationError, match="made by something else while pamlib wrote"):
        run.write(str(target))
    assert list(target.iterdir()) == []  # the other writer's folder, as it made it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # nothing else left
