"""``pamlib score --recommend``: append tailoring columns to a scored CSV.

Tailoring looks at each patient's previous assessment, so it needs the whole scored table: the
file is scored first, then read back as columns (pyarrow), tailored through the column engine,
and rewritten row by row with ``recommended_pathways``, ``recommendation_rules`` and
``reassess_by`` after the standard columns.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pamlib.formats.output import protect


def recommend_csv(scored: Path, target: Path | IO[bytes], rules: Sequence[str]) -> int:
    """Tailor the scored CSV ``scored`` into ``target``; returns the number of rows tailored."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from pamlib.tailoring import RECOMMENDATION_COLUMNS, apply_recommendations, build_engine
    from pamlib.tailoring.rows import no_pathway_summary

    with scored.open("rb") as f:
        names = next(csv.reader([f.readline().decode("utf-8")]))
    table = pacsv.read_csv(
        scored,
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False
        ),
    )
    columns = {n: np.asarray(table.column(n).to_pylist(), dtype=object) for n in table.column_names}
    engine = build_engine(list(rules))
    added = apply_recommendations(columns, engine)
    out_names = [*RECOMMENDATION_COLUMNS]
    tmp = None
    if isinstance(target, Path):
        tmp = target.with_name(target.name + ".part")
        stream: IO[str] = tmp.open("w", encoding="utf-8", newline="")
    else:
        stream = io.TextIOWrapper(target, encoding="utf-8", newline="")
    try:
        with scored.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            writer = csv.writer(stream, lineterminator="\n")
            header = next(reader)
            writer.writerow([*header, *out_names])
            for i, row in enumerate(reader):
                writer.writerow([*row, *(protect(added[c][i]) for c in out_names)])
        stream.flush()
    finally:
        if tmp is not None:
            stream.close()
            tmp.replace(target)  # type: ignore[arg-type]
        elif isinstance(stream, io.TextIOWrapper):
            stream.detach()
    for line in no_pathway_summary(added):  # rows without a pathway never go unnoticed
        print(line, file=sys.stderr)
    return len(table)


def copy_out(path: Path) -> None:
    with path.open("rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
