"""The library's quality guard: questions about *other* reports than the CISS one.

eval/gold_library.jsonl asks about 16 reports of the shared library (the Markdown reports of
`../shared/library`, read in place, never copied into the project); each question names its report
(`"file"`) and its evidence is located in that report only. The guard indexes just those 16
reports with the shipped model and checks the headline figures of both halves against floors;
half B is held out, so nothing here prints its questions.

The library is test data the checkout expects beside it (`../shared/library`, see its README).
When it is missing the guard fails and says where it looked: a quality check that skips itself
measures nothing.

Floors sit a little under what the code reached when they were set (the figures are in the commit
that set them). The guard's corpus is the 16 reports only, so its figures are not the unscoped
81-file library figures of the README (there, other reports compete for the top 5).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.evaluate import Headline, evaluate, headlines, load_gold

from .conftest import assert_within

ROOT = Path(__file__).resolve().parent.parent
#: Where the checkout expects the shared library (a sibling folder of the checkout).
LIBRARY = ROOT.parent / "shared" / "library"
GOLD = ROOT / "eval" / "gold_library.jsonl"

#: Lowest acceptable figure per half (fractions): R@5 and MRR@10 per language, unanswerable
#: questions flagged, faithful citations.
#: library-B flagged was 0.55 (4 of 7); the within-document ranking stage (rag.retrieve.within_documents)
#: changes which three passages the not-found check reads for one of its questions on the 16 reports
#: (3 of 7; 4 of 7 in the 81-file library) while lifting library-A English R@5 0.897 -> 0.949 here.
FLOORS: dict[str, dict[str, float]] = {
    "library-A": dict(zh_recall_5=0.93, zh_mrr_10=0.95, en_recall_5=0.95, en_mrr_10=0.77, flagged=0.40, faithful=1.0),
    "library-B": dict(zh_recall_5=0.90, zh_mrr_10=0.92, en_recall_5=0.94, en_mrr_10=0.77, flagged=0.40, faithful=1.0),
}
#: Highest acceptable figure per half: answerable questions wrongly flagged not found, mean
#: top-5 passage length (characters), share of top-5 passages from reference lists.
CEILINGS: dict[str, dict[str, float]] = {
    "library-A": dict(false_flag=0.02, mean_top5_chars=270, reference_top5=0.02),
    "library-B": dict(false_flag=0.03, mean_top5_chars=275, reference_top5=0.02),
}


def library() -> Path:
    """The shared library folder; a failure naming the place looked at when it is absent."""
    if not LIBRARY.is_dir() or not any(LIBRARY.glob("*.md")):
        pytest.fail(f"the shared library of reports is missing: expected the Markdown reports in {LIBRARY} "
                    "(../shared/library beside the checkout); the library quality guard cannot measure without it")
    return LIBRARY


def gold_rows() -> list[dict]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- the gold set itself (no model) -------------------------------------------------------------
def test_gold_library_is_about_the_library_reports():
    folder = library()
    rows = gold_rows()
    cases = load_gold(GOLD)
    files = Counter(r["file"] for r in rows)
    assert len(rows) >= 90 and len(files) >= 15
    assert all(n >= 5 for n in files.values()), files
    assert sum(r["lang"] == "en" for r in rows) >= 0.6 * len(rows)
    unanswerable = sum(not r["evidence"] for r in rows)
    assert 0.08 * len(rows) <= unanswerable <= 0.15 * len(rows)
    assert {c.set for c in cases} == {"library-A", "library-B"}
    for r in rows:
        assert (r["type"] == "unanswerable") == (not r["evidence"]), r["id"]
        text = (folder / r["file"]).read_bytes().decode("utf-8")
        for span in r["evidence"]:
            assert span in text, (r["id"], r["file"], span)


def test_the_reports_follow_the_stated_rule():
    """Every 5th report in sorted file-name order, starting with the first (README excluded)."""
    reports = sorted(p.name for p in library().glob("*.md") if p.name.lower() != "readme.md")
    assert {r["file"] for r in gold_rows()} == set(reports[::5])


# -- the guard: the shipped model over the 16 reports ------------------------------------------
@pytest.fixture(scope="module")
def reports_assistant(real_env, tmp_path_factory):
    """The product as shipped (default model) over just the reports the gold set is about, read in
    place from the shared library; index built once in a temporary folder."""
    from rag.assistant import Assistant
    from rag.corpus import load_document

    folder = library()
    names = sorted({r["file"] for r in gold_rows()})

    @dataclass
    class Reports(Assistant):
        """An assistant whose corpus is some files of a folder, not all of them."""

        def documents(self):
            if self._docs is None:
                self._docs = [load_document(folder / name, folder) for name in names]
            return self._docs

    with pytest.MonkeyPatch.context() as mp:
        for k, v in real_env.items():
            mp.setenv(k, v)
        a = Reports(corpus_dir=folder, index_dir=tmp_path_factory.mktemp("library-index"), on_notice=lambda m: None)
        a.index()
        yield a


@pytest.fixture(scope="module")
def figures(reports_assistant) -> dict[str, Headline]:
    report = evaluate(reports_assistant, load_gold(GOLD), k=10, mode="hybrid")
    assert report.left_out == ()
    assert len(reports_assistant.documents()) == len({r["file"] for r in gold_rows()})
    return {h.set: h for h in headlines(report)}


def test_both_halves_are_measured(figures):
    assert set(figures) == set(FLOORS) == set(CEILINGS)
    assert (figures["library-A"].n, figures["library-B"].n) == (61, 61)


@pytest.mark.parametrize("half", sorted(FLOORS))
def test_library_figures_hold(figures, half):
    assert_within(figures[half], half, FLOORS[half], CEILINGS[half])


def test_a_missing_library_fails_the_guard_instead_of_skipping_it(monkeypatch, tmp_path):
    import tests.test_library_quality as guard

    monkeypatch.setattr(guard, "LIBRARY", tmp_path / "no-library")
    with pytest.raises(pytest.fail.Exception, match="shared library of reports is missing"):
        guard.library()
    (tmp_path / "no-library").mkdir()  # an empty folder is no library either
    with pytest.raises(pytest.fail.Exception, match=str(tmp_path / "no-library")):
        guard.library()
