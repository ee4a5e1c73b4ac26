"""``pamlib score --recommend``: append tailoring columns to a scored CSV.

Tailoring looks at each patient's previous assessment, so it needs the whole scored table: the
file is scored first, then read back as columns (pyarrow), tailored through the column engine,
and rewritten row by row with ``recommended_pathways``, ``recommendation_rules`` and
``reassess_by`` after the standard columns.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from pamlib.formats.guard import AtomicTarget
from pamlib.formats.output import CsvWriter, protect


def recommend_csv(scored: Path, target: AtomicTarget, rules: Sequence[str]) -> int:
    """Tailor the scored CSV ``scored`` into ``target``; returns the number of rows tailored.

    ``target`` is committed only after the last row is written; on any error or interrupt it
    is discarded, so a previous file under the final name stays as it was.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from pamlib.tailoring import RECOMMENDATION_COLUMNS, apply_recommendations, build_engine
    from pamlib.tailoring.rows import no_pathway_summary

    stream: io.TextIOWrapper | None = None
    try:
        with scored.open("rb") as f:
            names = next(csv.reader([f.readline().decode("utf-8")]))
        table = pacsv.read_csv(
            scored,
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
        columns = {
            n: np.asarray(table.column(n).to_pylist(), dtype=object) for n in table.column_names
        }
        engine = build_engine(list(rules))
        added = apply_recommendations(columns, engine)
        out_names = [*RECOMMENDATION_COLUMNS]
        stream = io.TextIOWrapper(target.stream, encoding="utf-8", newline="")
        with scored.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            writer = CsvWriter(stream)
            header = next(reader)
            writer.writerow([*header, *out_names])
            for i, row in enumerate(reader):
                writer.writerow([*row, *(protect(added[c][i]) for c in out_names)])
        stream.flush()
        stream.detach()  # the target owns the binary stream
        stream = None
        target.commit()
    except BaseException:
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.detach()
        target.discard()
        raise
    for line in no_pathway_summary(added):  # rows without a pathway never go unnoticed
        print(line, file=sys.stderr)
    return len(table)
