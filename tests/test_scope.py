"""Scoped questions (rag.scope): naming documents, and a report asked in a library answering
exactly as when it is the whole corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.corpus import load_corpus
from rag.errors import DocumentNotFoundError, InvalidArgumentError
from rag.scope import resolve_docs, title_of

from .conftest import REPORT, ROOT, HashEncoder

SOURCE = "corpus/" + REPORT.name

#: Small reports sharing the CISS report's vocabulary (ASEAN, China–US, IPEF, the South China Sea),
#: names it never mentions (旧金山, Ferdinand Marcos, 2023), and acronym pairs of their own, so
#: that BM25 statistics, bridge terms, acronym definitions and the not-found check all differ
#: between the library and the report alone.
OTHERS = {
    "asean-2023-notes.md": """版次: 头版（v1）
日期: 2023-11-20

# 东盟与中美关系观察 2023

## 摘要
- 2023年11月，中美元首在旧金山会晤，东盟国家普遍欢迎中美关系企稳。
- 东盟坚持中心地位，希望在中美之间保持平衡，推动区域全面经济伙伴关系协定（RCEP）落实。

## 南海
菲律宾总统费迪南德·马科斯（Ferdinand Marcos）调整南海政策，与美国扩大联合演训。
“南海行为准则”（COC）磋商继续推进，东盟与中国同意加快案文谈判。
东盟国家希望南海保持和平稳定，反对域外国家介入。

## 参考资料
- [新闻](https://example.com/a)
- [报道](https://example.com/b)
""",
    "ipef-trade.md": """# 印太经济框架与区域供应链

## 背景
美国推出印度太平洋经济繁荣框架（IPEF），聚焦供应链、清洁经济和公平经济。
IPEF 不含关税减让，东盟七国加入。供应链韧性成为美国对东南亚经济政策的核心。
2022年RCEP成员之间的贸易总额达到约5.6万亿美元，区域经济一体化加深。

## 影响
东盟国家在中美经济竞争中寻求对冲，东盟中心地位面临挑战。
Supply chain resilience and the Indo-Pacific Economic Framework (印太框架) reshape regional trade.
""",
    "students.md": """# 留学与人文交流

2022年在美国高校就读的中国留学生约为29万人，人数连续下降。
中美人文交流受到签证政策影响，东盟国家成为中国学生留学的新选择。
人口老龄化与人才流动也影响高等教育合作。
""",
    # Quotes a sentence of the report that a gold question has as its evidence.
    "review.md": """# 书评：亚太地区的十字路口

清华大学战略与安全研究中心撰写了以“处在十字路口的亚太地区和中国的战略选择”为主题的年度报告，本文评述其主要观点。
""",
}


def _report_folder(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    shutil.copy(REPORT, corpus / REPORT.name)
    shutil.copy(REPORT.with_name(REPORT.stem + ".meta.json"), corpus)
    return corpus


def _assistant(corpus: Path) -> Assistant:
    a = Assistant(corpus_dir=corpus, index_dir=corpus.parent / "indexes", encoder=HashEncoder(), on_notice=lambda m: None)
    a.index()
    return a


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Assistant:
    return _assistant(_report_folder(tmp_path_factory.mktemp("single")))


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Assistant:
    corpus = _report_folder(tmp_path_factory.mktemp("library"))
    for name, text in OTHERS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return _assistant(corpus)


def _questions() -> list[str]:
    lines = (ROOT / "eval" / "gold_dev.jsonl").read_text(encoding="utf-8").splitlines()
    gold = [json.loads(line) for line in lines if line.strip()]
    # Every unanswerable question (the not-found check), and answerable ones in both languages.
    picked = [g for g in gold if not g["evidence"]] + [g for g in gold if g["evidence"]][:40]
    return [g["question"] for g in picked] + [
        "What does IPEF stand for?",
        "IPEF是什么的缩写？",
        "东盟的中心地位面临哪些挑战？",
        "How does supply chain resilience shape US policy toward Southeast Asia?",
    ]


def _view(answer) -> tuple:
    return (
        [(h.passage.id, round(h.score, 6), h.sentences) for h in answer.hits],
        answer.not_found,
        answer.not_found_reason,
    )


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_a_report_asked_in_a_library_answers_exactly_as_alone(single, library, mode):
    questions = _questions()
    differs_unscoped = 0
    for q in questions:
        alone = single.ask(q, k=10, mode=mode)
        scoped = library.ask(q, k=10, mode=mode, docs=[REPORT.name])
        assert _view(scoped) == _view(alone), q
        assert scoped.scope == frozenset({SOURCE})
        differs_unscoped += _view(library.ask(q, k=10, mode=mode)) != _view(alone)
    # The other reports do change unscoped answers, so the equality above is not vacuous.
    assert differs_unscoped > 0


def test_a_name_only_another_report_mentions_is_absent_from_the_scope(library):
    q = "报告如何评价2023年中美元首旧金山会晤？"
    assert not library.ask(q).not_found  # the library mentions 旧金山 and 2023
    scoped = library.ask(q, docs=["亚太命运共同体展望"])
    assert scoped.not_found and "旧金山" in scoped.not_found_reason


def test_scoped_hits_come_only_from_the_scope(library):
    for docs in (["ipef-trade.md"], ["ipef-trade", "students.md"], ["*.md"]):
        sources = resolve_docs(docs, library.documents())
        answer = library.ask("东盟 供应链 留学生", k=10, mode="hybrid", docs=docs)
        assert answer.hits and {h.passage.source for h in answer.hits} <= sources


def test_resolve_by_file_name_stem_source_glob_and_titles(library):
    docs = library.documents()
    assert resolve_docs([REPORT.name], docs) == {SOURCE}
    assert resolve_docs([REPORT.stem], docs) == {SOURCE}
    assert resolve_docs([SOURCE], docs) == {SOURCE}
    assert resolve_docs(["《亚太命运共同体展望》"], docs) == {SOURCE}
    assert resolve_docs(["an outlook on ASIA-PACIFIC community with a shared future"], docs) == {SOURCE}
    assert resolve_docs(["印太经济框架与区域供应链"], docs) == {"corpus/ipef-trade.md"}  # its `#` heading
    assert resolve_docs(["*.MD"], docs) == {"corpus/" + n for n in OTHERS}
    assert resolve_docs(["ciss-*", "students.md"], docs) == {SOURCE, "corpus/students.md"}


def test_a_name_matching_nothing_is_a_clear_error_with_close_names(library):
    with pytest.raises(DocumentNotFoundError, match=r"no document matches 'ipef-trad\.md'.*ipef-trade\.md"):
        library.ask("东盟", docs=["ipef-trad.md"])
    with pytest.raises(DocumentNotFoundError, match="亚太命运共同体展望|ciss-2022"):
        resolve_docs(["亚太命运共同体"], library.documents())
    with pytest.raises(InvalidArgumentError):  # the same family the CLI and HTTP turn into one line / 400
        resolve_docs([], library.documents())
    with pytest.raises(DocumentNotFoundError, match="rag docs"):
        resolve_docs(["zzzz-nothing-like-it"], library.documents())


def test_titles_come_from_metadata_then_heading_then_file_name(library):
    titles = {d.source: title_of(d) for d in library.documents()}
    assert titles[SOURCE] == "亚太命运共同体展望"
    assert titles["corpus/asean-2023-notes.md"] == "东盟与中美关系观察 2023"
    assert titles["corpus/students.md"] == "留学与人文交流"


def test_hits_carry_their_document_title(library):
    answer = library.ask("东盟 供应链 留学生", k=10, mode="bm25")
    out = answer.to_dict()
    by_source = {p["source"]: p["title"] for p in out["passages"]}
    assert len(by_source) >= 2
    for source, title in by_source.items():
        assert title == title_of(next(d for d in library.documents() if d.source == source))
    assert out["docs"] is None
    assert library.ask("东盟", docs=["students.md"]).to_dict()["docs"] == ["corpus/students.md"]


def test_corpus_loaded_twice_gives_the_same_scope(library):
    assert resolve_docs(["students"], load_corpus(library.corpus_dir)) == {"corpus/students.md"}


def test_cli_ask_doc_scopes_and_shows_titles(library):
    common = ("--corpus", str(library.corpus_dir), "--index-dir", str(library.index_dir), "--model", HashEncoder.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}

    def rag(*args):
        return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)

    r = rag("ask", "东盟 供应链", "--mode", "bm25", "--doc", "ipef-trade.md", "--doc", "students", "--json", *common)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {p["source"] for p in out["passages"]} <= {"corpus/ipef-trade.md", "corpus/students.md"}
    assert out["docs"] == ["corpus/ipef-trade.md", "corpus/students.md"]
    r = rag("ask", "东盟的中心地位", "--mode", "bm25", "--doc", "亚太命运共同体展望", "-k", "2", *common)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("    亚太命运共同体展望\n") == 2  # the title under each hit's heading
    r = rag("ask", "东盟", "--mode", "bm25", "--doc", "ipef.md", *common)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "no document matches 'ipef.md'" in r.stderr and "ipef-trade.md" in r.stderr and "Traceback" not in r.stderr


def test_http_ask_with_docs_and_the_documents_list(library):
    from fastapi.testclient import TestClient

    from rag.server import create_app

    with TestClient(create_app(library, warm_up=False), raise_server_exceptions=False) as client:
        r = client.post("/ask", json={"question": "东盟 供应链", "k": 5, "mode": "bm25", "docs": ["ipef-trade.md"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["docs"] == ["corpus/ipef-trade.md"]
        assert body["passages"] and all(p["source"] == "corpus/ipef-trade.md" for p in body["passages"])
        assert all(p["title"] == "印太经济框架与区域供应链" for p in body["passages"])
        alone = library.ask("东盟 供应链", k=5, mode="bm25", docs=["ipef-trade.md"]).to_dict()
        assert [p["id"] for p in body["passages"]] == [p["id"] for p in alone["passages"]]
        r = client.post("/ask", json={"question": "东盟", "docs": ["nothing-like-this.md"]})
        assert r.status_code == 400 and "no document matches" in r.json()["error"]
        r = client.post("/ask", json={"question": "东盟", "docs": "students.md"})
        assert r.status_code == 422  # a list of names, not a string
        r = client.post("/ask/batch", json={"questions": [{"id": 1, "question": "东盟"}], "mode": "bm25", "docs": ["students"]})
        assert r.status_code == 200 and r.json()["answers"][0]["docs"] == ["corpus/students.md"]
        r = client.post("/ask/batch", json={"questions": [{"question": "东盟"}], "docs": ["nope.md"]})
        assert r.status_code == 400
        r = client.get("/documents")
        assert r.status_code == 200
        rows = {d["name"]: d for d in r.json()["documents"]}
        assert set(rows) == {REPORT.name, *OTHERS} and all(d["state"] == "indexed" for d in rows.values())
        assert rows[REPORT.name]["title_en"].startswith("An Outlook")


def test_eval_locates_evidence_in_the_gold_sets_own_report(library, single):
    from rag.evaluate import evaluate, home_files, load_gold, locate, source_files

    cases = load_gold(ROOT / "eval" / "gold_dev.jsonl")
    files = source_files(library.documents())
    g001 = next(c for c in cases if c.id == "g001")
    assert {s.source for s in locate(g001.evidence[0], files)} == {
        SOURCE, "corpus/review.md"}
    assert set(home_files(cases, files)) == {SOURCE}  # only the report holds every case's evidence
    assert set(home_files([g001], files)) == {SOURCE, "corpus/review.md"}

    some = [c for c in cases if c.id in {"g001", "g003", "g004", "g202"}]
    unscoped = evaluate(library, some, k=10, mode="bm25")
    assert unscoped.evidence_in == (SOURCE,) and unscoped.scope == ()
    first = next(r for r in unscoped.results if r.id == "g001")
    top = library.ask(g001.question, k=10, mode="bm25").hits
    review_ranks = [h.rank for h in top if h.passage.source == "corpus/review.md"]
    assert review_ranks and (first.first_rank is None or first.first_rank not in review_ranks)

    scoped = evaluate(library, some, k=10, mode="bm25", docs=[REPORT.name])
    alone = evaluate(single, some, k=10, mode="bm25")
    assert scoped.scope == (SOURCE,) and scoped.evidence_in == (SOURCE,)
    assert [(r.id, r.span_ranks, r.not_found) for r in scoped.results] == [
        (r.id, r.span_ranks, r.not_found) for r in alone.results]


def test_a_scope_of_every_document_is_the_whole_corpus(library):
    q = "What does IPEF stand for?"
    assert _view(library.ask(q, k=10, docs=["*"])) == _view(library.ask(q, k=10))
