"""Builders of scored-table rows for the reporting tests (fixtures, since test modules cannot
import each other under ``--import-mode=importlib``)."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest

Row = dict[str, str]
MakeRow = Callable[..., Row]
MakeCohort = Callable[..., list[Row]]


def level_of(score: float) -> int:
    """Cut points of the "current" set (PAM-FACTS.md), applied to a one-decimal score."""
    if score <= 47.0:
        return 1
    if score <= 55.1:
        return 2
    if score <= 67.0:
        return 3
    return 4


@pytest.fixture
def make_row() -> MakeRow:
    """``make_row(patient, "2024-01-31", 52.3)``: a scored-table row, level from the score."""
    counter = iter(range(1, 1_000_000))

    def make(
        patient: str,
        assessed_on: str | dt.date,
        score: float | None = None,
        *,
        status: str | None = None,
        level: int | None = None,
        flags: str = "",
        demo: bool = False,
        assessment_id: str | None = None,
        **extra: str,
    ) -> Row:
        if status is None:
            status = "scored" if score is not None else "not-scored"
        if level is None and score is not None:
            level = level_of(score)
        day = assessed_on.isoformat() if isinstance(assessed_on, dt.date) else assessed_on
        return {
            "assessment_id": assessment_id or f"A{next(counter):07d}",
            "patient_id": patient,
            "assessed_on": day,
            "instrument": "PAM-13",
            "status": status,
            "score": "" if score is None else f"{score:.1f}",
            "level": "" if level is None else str(level),
            "cutpoint_set": "current" if level is not None else "",
            "flags": flags,
            "demo": "true" if demo else "false",
            **extra,
        }

    return make


@pytest.fixture
def make_cohort(make_row: MakeRow) -> MakeCohort:
    """A synthetic cohort: patients at a few sites, 1–4 assessments 3–14 months apart."""

    def make(
        seed: int = 7,
        n_patients: int = 400,
        sites: tuple[str, ...] = ("north", "south", "east"),
        *,
        demo: bool = False,
    ) -> list[Row]:
        rnd = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not security
        rows: list[Row] = []
        for p in range(n_patients):
            site = rnd.choice(sites)
            day = dt.date(2023, 1, 1) + dt.timedelta(days=rnd.randrange(500))
            score = round(min(100.0, max(0.0, rnd.gauss(56, 15))), 1)
            for _ in range(rnd.choice((1, 2, 2, 2, 3, 4))):
                roll = rnd.random()
                if roll < 0.06:
                    rows.append(make_row(f"P{p:05d}", day, None, demo=demo, site=site))
                elif roll < 0.08:  # a raw-sum provider: scored, but no 0–100 score
                    rows.append(make_row(f"P{p:05d}", day, None, status="scored", site=site))
                else:
                    flags = "extreme-response" if rnd.random() < 0.04 else ""
                    rows.append(
                        make_row(f"P{p:05d}", day, score, flags=flags, demo=demo, site=site)
                    )
                day += dt.timedelta(days=rnd.randrange(90, 430))
                score = round(min(100.0, max(0.0, score + rnd.gauss(1.5, 8))), 1)
        rnd.shuffle(rows)
        return rows

    return make


# -- reading figures back out of an HTML page ------------------------------------------------------


@dataclass
class Figure:
    """An element with ``data-key``: its key, its JSON value, and its text (None for a mark: a
    chart's bar or point, which shows its value by its place)."""

    key: str
    value: Any
    text: str | None


_VOID = {"meta", "br", "img", "input", "link", "hr", "wbr", "col", "source"}


class _FigureParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: list[Figure] = []
        self.stack: list[tuple[str, Figure | None, list[str]]] = []
        self.marks: set[int] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        found = dict(attrs)
        figure = None
        if found.get("data-key") is not None:
            figure = Figure(str(found["data-key"]), json.loads(str(found["data-value"])), None)
            self.figures.append(figure)
            if tag == "rect" or set(str(found.get("class")).split()) & {"bar", "point"}:
                self.marks.add(id(figure))
        self.stack.append((tag, figure, []))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, figure, text = self.stack.pop()
            if figure is not None and id(figure) not in self.marks:
                figure.text = "".join(text).strip()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][0] != "title":
            for _, _, text in self.stack:
                text.append(data)


@pytest.fixture(scope="session")
def page_figures() -> Callable[[str], list[Figure]]:
    """Every figure in an HTML page (as written by pamlib or as Chromium's DOM dump)."""

    def parse(page: str) -> list[Figure]:
        parser = _FigureParser()
        parser.feed(page)
        parser.close()
        return parser.figures

    return parse


@pytest.fixture(scope="session")
def json_at() -> Callable[[Any, str], Any]:
    """The value at a figure key (``groups.0.levels_baseline.2``) of a JSON summary."""

    def resolve(summary: Any, key: str) -> Any:
        node = summary
        for part in key.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    return resolve


def shown_as(value: Any) -> str:
    """How the page writes a JSON value."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


@pytest.fixture(scope="session")
def check_page_against_json(
    page_figures: Callable[[str], list[Figure]], json_at: Callable[[Any, str], Any]
) -> Callable[[str, Any], list[Figure]]:
    """Assert every figure of a page equals the JSON summary, value and text; return them."""

    def check(page: str, summary: Any) -> list[Figure]:
        figures = page_figures(page)
        assert figures, "no figures in the page"
        for figure in figures:
            expected = json_at(summary, figure.key)
            assert figure.value == expected, figure.key
            assert type(figure.value) is type(expected), figure.key
            if figure.text is not None:
                assert figure.text == shown_as(expected), figure.key
        return figures

    return check
