"""Boilerplate shared across reports (rag.boilerplate): what is marked, what is not, and what it
does to a ranking (the same penalty as cover and back matter, none with one document)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.boilerplate import marked_positions, shared_passages, shingles

from .conftest import HashEncoder

DISCLAIMER = "本报告基于现有公开信息整理，相关数据来源于公开渠道，可能存在滞后或遗漏，结论仅供参考，不构成任何投资或政策建议。"
QUOTE = "国务院常务会议审议通过了关于促进数据跨境流动的若干措施，明确了重要数据目录的制定程序与出境安全评估的适用范围。"


class Library:
    """The two things `marked_positions` reads of a loaded index."""

    def __init__(self, texts: list[str], ranges: dict[str, tuple[int, int, int, int]]) -> None:
        self.passages = [SimpleNamespace(text=t) for t in texts]
        self.ranges = ranges


def body(topic: str) -> str:
    return f"{topic}是本文讨论的主题。围绕{topic}，各方提出了不同的看法，本文逐一梳理其来龙去脉与主要分歧。"


def test_shingles_ignore_whitespace_punctuation_and_markup():
    assert shingles("数据 跨境，流动！安全评估", 4) == shingles("数据跨境流动安全评估", 4)
    assert shingles("短", 8) == set()


def test_a_paragraph_four_reports_share_is_marked_in_each_of_them():
    files = {f"r{i}.md": [body(t), DISCLAIMER] for i, t in enumerate(["粮食安全", "航运保险", "电网改造", "人口流动"])}
    assert shared_passages(files) == {f"r{i}.md": [1] for i in range(4)}


def test_content_quoted_by_two_reports_or_a_shared_sentence_in_a_longer_passage_is_not_marked():
    files = {
        "a.md": [body("数据治理") + QUOTE, DISCLAIMER],
        "b.md": [QUOTE, DISCLAIMER],  # the whole passage is the quote, but only one other file has it
        "c.md": [body("港口建设"), DISCLAIMER],
        # the disclaimer inside a passage that is mostly its own words: not near-whole overlap
        "d.md": [body("海洋生态") + body("渔业捕捞") + DISCLAIMER],
    }
    marked = shared_passages(files)
    assert marked == {"a.md": [1], "b.md": [1], "c.md": [1]}
    # With the quote in a third report, the passage that is only the quote is shared with two others.
    files["e.md"] = [QUOTE]
    assert shared_passages(files)["b.md"] == [0, 1]


def test_one_file_marks_nothing_even_when_it_repeats_itself():
    assert shared_passages({"only.md": [DISCLAIMER, DISCLAIMER, DISCLAIMER]}) == {}
    assert marked_positions(Library([DISCLAIMER] * 3, {"only.md": (0, 3, 0, 3)})) == frozenset()


def test_marked_positions_number_passages_across_the_library():
    texts = [body("粮食安全"), DISCLAIMER, DISCLAIMER, body("电网改造"), body("人口流动"), DISCLAIMER]
    index = Library(texts, {"a.md": (0, 2, 0, 2), "b.md": (2, 4, 2, 4), "c.md": (4, 6, 4, 6)})
    assert marked_positions(index) == frozenset({1, 2, 5})
    assert marked_positions(index) is marked_positions(index)  # computed once per index


@pytest.mark.parametrize("store", ["faiss", "milvus"])
def test_boilerplate_ranks_below_body_text_of_the_report_asked_about(tmp_path: Path, store: str):
    from rag.assistant import Assistant
    from rag.retrieve import MATTER_PENALTY

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    topics = ["粮食安全", "航运保险", "电网改造", "人口流动"]
    for i, t in enumerate(topics):
        (corpus / f"r{i}.md").write_text(f"# 关于{t}的报告\n\n## 背景\n\n{body(t)}\n\n## 局限\n\n{DISCLAIMER}\n", encoding="utf-8")
    milvus = {"store": "milvus", "milvus_uri": str(tmp_path / "lite" / "milvus.db")} if store == "milvus" else {}
    if milvus:
        pytest.importorskip("pymilvus")
    a = Assistant(corpus_dir=corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=lambda m: None, **milvus)
    question = "报告的数据来源于哪些公开信息渠道？"
    hits = a.ask(question, k=8, mode="hybrid").hits
    shared = [h for h in hits if DISCLAIMER in h.passage.text]
    assert shared, "the shared paragraph is still retrievable"
    index = a.index()
    marked = marked_positions(index)
    assert {index.passages[p].text for p in marked} == {DISCLAIMER} and len(marked) == 4
    # Each disclaimer passage lost the penalty: its score is MATTER_PENALTY lower than without it.
    import rag.boilerplate as boilerplate

    original = boilerplate.MIN_SHARE
    try:
        boilerplate.MIN_SHARE = 2.0  # nothing can be marked
        boilerplate._MARKED.clear()
        plain = {h.passage.id: h.score for h in a.ask(question, k=8, mode="hybrid").hits}
    finally:
        boilerplate.MIN_SHARE = original
        boilerplate._MARKED.clear()
    for h in shared:
        assert h.score == pytest.approx(plain[h.passage.id] - MATTER_PENALTY)
    # Asked of one report, nothing is marked: the scope ranks as an index of that report alone.
    scoped = a.ask(question, k=4, mode="hybrid", docs=["r0.md"]).hits
    assert scoped[0].passage.text == DISCLAIMER
