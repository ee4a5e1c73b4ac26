"""``pamlib score --recommend``: append tailoring columns to a scored CSV.

Tailoring looks at each patient's previous assessment, so it needs the whole scored table: the
file is scored first, then read back as a :class:`~pamlib.tables.scored.ScoredTable` (the
checks every reader of a scored table makes), tailored through the column engine,
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
    from pamlib.tables.scored import ScoredTable
    from pamlib.tailoring import RECOMMENDATION_COLUMNS, apply_recommendations, build_engine
    from pamlib.tailoring.rows import no_pathway_summary

    stream: io.TextIOWrapper | None = None
    try:
        table = ScoredTable.read(scored)
        engine = build_engine(list(rules))
        added = apply_recommendations(table, engine)
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
