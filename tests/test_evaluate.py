"""rag.evaluate: metric functions checked against hand-computed values, and `evaluate` run with a
fake assistant over a tiny corpus, so no embedding model is needed."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.chunking import Passage
from rag.evaluate import (
    GoldCase,
    GoldError,
    SourceFile,
    Span,
    aggregate,
    all_covered,
    compare,
    covers,
    evaluate,
    evidence_ranks,
    first_rank,
    gold_set,
    headlines,
    highlight_matches,
    load_gold,
    ndcg,
    passage_problem,
    reciprocal_rank,
    render_markdown,
    render_sets,
    report_json,
    score_question,
)
from rag.errors import RagError
from rag.retrieve import Hit

ROOT = Path(__file__).resolve().parent.parent
SRC = "corpus/mini.txt"
# Lines end with \n, \r\n and a lone \r; line numbers below are counted by hand.
#   line 1: "开头一句。"            offsets 0-4, \n at 5
#   line 2: "证据甲在这里出现。"     offsets 6-14, \r\n at 15-16
#   line 3: "中间一句话。"          offsets 17-22, \r at 23
#   line 4: "证据乙在结尾出现。"     offsets 24-32, \n at 33
TEXT = "开头一句。\n证据甲在这里出现。\r\n中间一句话。\r证据乙在结尾出现。\n"
EV_A = "证据甲在这里出现"  # 6-14
EV_B = "证据乙在结尾出现"  # 24-32


def passage(start: int, end: int, line_start: int, line_end: int, pid: str = "p", text: str | None = None) -> Passage:
    return Passage(
        id=pid,
        source=SRC,
        section=("mini",),
        start=start,
        end=end,
        line_start=line_start,
        line_end=line_end,
        text=TEXT[start:end] if text is None else text,
        kind="prose",
        sentences=((start, end),),
    )


# Hand-made passages of the mini text (offsets and lines as in the table above).
P1 = passage(0, 5, 1, 1, "p1")  # 开头一句。
P2 = passage(6, 15, 2, 2, "p2")  # 证据甲在这里出现。
P2_CRLF = passage(6, 17, 2, 2, "p2b")  # ends with \r\n: last char \n is still on line 2
P3 = passage(17, 23, 3, 3, "p3")  # 中间一句话。
P4 = passage(24, 33, 4, 4, "p4")  # 证据乙在结尾出现。
P34 = passage(17, 33, 3, 4, "p34")  # 中间一句话。\r证据乙…: crosses the lone \r


def hits(*passages: Passage, highlight: dict[str, tuple[int, int]] | None = None) -> list[Hit]:
    highlight = highlight or {}
    return [Hit(passage=p, score=1.0 / r, rank=r, sentences=(highlight[p.id],) if p.id in highlight else ())
            for r, p in enumerate(passages, 1)]


def case(cid: str, evidence: tuple[str, ...], lang: str = "zh", difficulty: str = "easy", type: str = "fact") -> GoldCase:
    return GoldCase(cid, lang, f"question {cid}?", "", evidence, "", type, difficulty)


FILES = {SRC: SourceFile.of(SRC, TEXT)}


def test_hand_offsets_are_right():
    assert TEXT[6:14] == EV_A and TEXT[24:32] == EV_B
    assert TEXT[15:17] == "\r\n" and TEXT[23] == "\r"
    assert FILES[SRC].line_starts == (0, 6, 17, 24, 34)


# -- coverage, ranks, RR, nDCG ------------------------------------------------------------------
def test_covers_needs_half_of_the_evidence():
    ev = Span(SRC, 10, 20)  # 10 characters
    assert covers(Span(SRC, 0, 15), ev)  # 5 of 10: exactly half counts
    assert not covers(Span(SRC, 0, 14), ev)  # 4 of 10
    assert covers(Span(SRC, 12, 18), ev)  # 6 of 10, inside
    assert not covers(Span("corpus/other.txt", 0, 100), ev)  # another file never covers


def test_highlight_needs_half_of_the_shorter_span():
    ev = Span(SRC, 10, 30)  # 20 characters
    assert highlight_matches(Span(SRC, 28, 32), ev)  # highlight of 4 shares 2: half of the shorter (4)
    assert not highlight_matches(Span(SRC, 29, 33), ev)  # shares 1 of 4
    assert highlight_matches(Span(SRC, 0, 40), ev)  # long highlight holding the whole span
    assert not highlight_matches(Span(SRC, 0, 10), ev)  # touching is not overlapping


def test_evidence_ranks_first_cover_only():
    a, b = (Span(SRC, 6, 14),), (Span(SRC, 24, 32),)
    ranked = [Span(SRC, 0, 5), Span(SRC, 6, 15), Span(SRC, 6, 17), Span(SRC, 17, 23)]
    # span A is covered at ranks 2 and 3: its rank is 2; span B is not covered at all
    assert evidence_ranks(ranked, [a, b]) == (2, None)
    assert first_rank((None, 3)) == 3
    assert first_rank((4, 2)) == 2
    assert first_rank((None,)) is None
    assert first_rank(()) is None


def test_reciprocal_rank():
    assert reciprocal_rank(first_rank([None, 3])) == pytest.approx(1 / 3)
    assert reciprocal_rank(1) == 1.0
    assert reciprocal_rank(10) == pytest.approx(0.1)
    assert reciprocal_rank(11) == 0.0  # beyond depth 10
    assert reciprocal_rank(None) == 0.0


def test_all_covered():
    assert all_covered((1, 5))
    assert not all_covered((1, 6))
    assert not all_covered((2, None))
    assert not all_covered(())


LOG3 = math.log2(3)  # 1.58496…: the discount at rank 2


@pytest.mark.parametrize(
    "ranks, expected",
    [
        # one span first covered at rank 3: DCG = 1/log2(4) = 0.5, IDCG = 1/log2(2) = 1
        ((3,), 0.5),
        # one span at rank 1: 1/1
        ((1,), 1.0),
        # one span never covered, or covered beyond 10: 0
        ((None,), 0.0),
        ((11,), 0.0),
        # two spans, one at rank 3: DCG = 0.5; IDCG = 1 + 1/log2(3) = 1.63093 → 0.30657
        ((None, 3), 0.5 / (1 + 1 / LOG3)),
        # two spans at ranks 1 and 2: DCG = 1 + 1/log2(3) = IDCG → 1
        ((1, 2), 1.0),
        # two spans, only one covered at rank 1: 1 / 1.63093 = 0.61315
        ((1, None), 1 / (1 + 1 / LOG3)),
        # one passage at rank 2 covering both spans: DCG = 2/log2(3) = 1.26186 → 1.26186/1.63093 = 0.77371
        ((2, 2), (2 / LOG3) / (1 + 1 / LOG3)),
        # one passage at rank 1 covering both: DCG = 2 > IDCG, capped at 1
        ((1, 1), 1.0),
    ],
)
def test_ndcg_by_hand(ranks, expected):
    assert ndcg(ranks) == pytest.approx(expected)


def test_ndcg_hand_values_spelled_out():
    assert ndcg((None, 3)) == pytest.approx(0.30657, abs=1e-5)
    assert ndcg((2, 2)) == pytest.approx(0.77371, abs=1e-5)


def test_duplicate_passages_do_not_inflate_ndcg():
    # ranks 1 and 2 both cover the only span: gain counted once, at rank 1
    spans = evidence_ranks([Span(SRC, 6, 15), Span(SRC, 6, 17)], [(Span(SRC, 6, 14),)])
    assert spans == (1,)
    assert ndcg(spans) == 1.0


# -- faithfulness ------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [P1, P2, P2_CRLF, P3, P4, P34])
def test_faithful_passages(p):
    assert passage_problem(p, FILES) is None


def test_unfaithful_passages():
    assert "text differs" in passage_problem(passage(6, 15, 2, 2, text="证据甲在那里出现。"), FILES)
    # after the lone \r the text is on line 4, not 3 (a \n-only count would say 3)
    assert "lines" in passage_problem(passage(24, 33, 3, 3), FILES)
    # the \n of \r\n belongs to line 2; claiming line 3 is wrong
    assert "lines" in passage_problem(passage(6, 17, 2, 3), FILES)
    assert "outside" in passage_problem(passage(30, 99, 4, 4, text=TEXT[30:99]), FILES)
    stray = Passage("x", "corpus/gone.txt", (), 0, 5, 1, 1, TEXT[:5], "prose", ())
    assert "not a corpus file" in passage_problem(stray, FILES)


# -- one question ------------------------------------------------------------------------------
def test_score_question_fields():
    c = case("q1", (EV_A, EV_B))
    r = score_question(c, hits(P1, P2, P3, P34, highlight={"p1": (0, 5)}), False, FILES, 12.5)
    assert r.span_ranks == (2, 4) and r.first_rank == 2
    assert r.answerable and r.n_evidence == 2 and r.faithful and r.problems == ()
    assert r.highlight_ok is False  # the top passage's highlight does not touch the evidence
    assert r.top5_mean_chars == pytest.approx((5 + 9 + 6 + 16) / 4)
    assert r.latency_ms == 12.5 and r.n_hits == 4

    r = score_question(c, hits(P2, highlight={"p2": (6, 15)}), False, FILES)
    assert r.highlight_ok is True and r.first_rank == 1

    r = score_question(case("q2", ()), hits(P1), True, FILES)
    assert not r.answerable and r.highlight_ok is None and r.first_rank is None and r.not_found


def test_missing_evidence_is_an_error():
    with pytest.raises(GoldError, match="in no corpus file"):
        score_question(case("q3", ("不存在的句子",)), hits(P1), False, FILES)


# -- gold files --------------------------------------------------------------------------------
def _line(**kw) -> str:
    base = {"id": "x", "lang": "zh", "question": "？", "answer": "", "evidence": [], "section": "",
            "type": "fact", "difficulty": "easy"}
    base.update(kw)
    return json.dumps(base, ensure_ascii=False)


def test_load_gold(tmp_path):
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text(_line(id="a1", evidence=[EV_A]) + "\n\n" + _line(id="a2") + "\n", encoding="utf-8")
    b.write_text(_line(id="b1", lang="zh-Hant", question="證據在哪？", evidence=[EV_B]) + "\n", encoding="utf-8")
    cases = load_gold([a, b])
    assert [c.id for c in cases] == ["a1", "a2", "b1"]
    assert cases[0].evidence == (EV_A,) and cases[0].answerable and not cases[1].answerable
    assert cases[2].lang == "zh-Hant" and cases[2].origin.endswith("b.jsonl:1")
    assert load_gold(str(a))[0].id == "a1"

    b.write_text(_line(id="a1") + "\n", encoding="utf-8")
    with pytest.raises(GoldError, match="already used"):
        load_gold([a, b])
    b.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(GoldError, match=r"b.jsonl:1"):
        load_gold([b])
    b.write_text(json.dumps({"id": "z", "question": "?"}) + "\n", encoding="utf-8")
    with pytest.raises(GoldError, match="missing"):
        load_gold([b])
    with pytest.raises(GoldError, match="cannot read"):
        load_gold([tmp_path / "none.jsonl"])


# -- evaluate with a fake assistant ------------------------------------------------------------
@dataclass
class FakeAssistant:
    """Answers each question with canned hits; records the modes it was asked with."""

    answers: dict[str, tuple[list[Hit], bool]]
    docs: list = field(default_factory=lambda: [SimpleNamespace(source=SRC, text=TEXT, path=None)])
    calls: list = field(default_factory=list)

    def documents(self):
        return self.docs

    def ask(self, question, k=5, mode="hybrid"):
        self.calls.append((question, k, mode))
        found, not_found = self.answers[question]
        return SimpleNamespace(hits=found[:k], not_found=not_found)

    def _answer(self, question, k, mode, id=None, *, bridge=True, fusion="score"):
        self.calls.append((question, k, mode, {"bridge": bridge} if fusion == "score" else {"fusion": fusion}))
        found, not_found = self.answers[question]
        return SimpleNamespace(hits=found[:k], not_found=not_found)


CASES = [
    case("z1", (EV_A,), "zh", "easy"),  # hit at rank 2
    case("z2", (EV_A, EV_B), "zh", "hard", "multi-part"),  # spans at ranks 1 and 3
    case("e1", (EV_B,), "en", "hard"),  # missed
    case("e2", (), "en", "easy", "unanswerable"),  # flagged
]
ANSWERS = {
    "question z1?": (hits(P1, P2, P3, highlight={"p1": (0, 5)}), False),
    "question z2?": (hits(P2, P3, P4, highlight={"p2": (6, 15)}), False),
    "question e1?": (hits(P1, P3), True),  # a false flag
    "question e2?": (hits(P1), True),
}


def test_measurement_variants_stay_in_the_evaluator():
    from rag import config
    from rag.evaluate import COMPARE_MODES, VARIANTS

    assert set(VARIANTS).isdisjoint(config.MODES) and not hasattr(config, "VARIANTS")
    assert COMPARE_MODES == ("hybrid", "dense", "bm25", "hybrid-rrf", "hybrid-synonyms", "hybrid-nobridge", "dense-nobridge")
    fake = FakeAssistant(ANSWERS)
    rep = evaluate(fake, CASES, k=10, mode="dense-nobridge")
    assert rep.mode == "dense-nobridge"
    assert len(fake.calls) == 5 and all(c[1:] == (10, "dense", {"bridge": False}) for c in fake.calls)
    fake.calls.clear()
    evaluate(fake, CASES, k=10, mode="hybrid-rrf")
    assert len(fake.calls) == 5 and all(c[1:] == (10, "hybrid", {"fusion": "rrf"}) for c in fake.calls)
    with pytest.raises(RagError, match="unknown mode"):
        evaluate(fake, CASES, k=10, mode="bm25-nobridge")


def test_evaluate_with_fake_assistant():
    fake = FakeAssistant(ANSWERS)
    rep = evaluate(fake, CASES, k=10, mode="bm25")
    assert rep.mode == "bm25" and rep.k == 10
    assert len(fake.calls) == 5 and all(c[1:] == (10, "bm25") for c in fake.calls)  # warm-up + 4
    by_id = {r.id: r for r in rep.results}
    assert by_id["z1"].first_rank == 2 and by_id["z2"].span_ranks == (1, 3) and by_id["e1"].first_rank is None

    o = rep.overall
    assert (o.n, o.answerable, o.unanswerable, o.multi_evidence) == (4, 3, 1, 1)
    assert o.recall_1 == pytest.approx(1 / 3)  # z2
    assert o.recall_3 == pytest.approx(2 / 3)  # z1, z2
    assert o.mrr_10 == pytest.approx((1 / 2 + 1 + 0) / 3)
    # z1: 1/log2(3); z2: (1 + 1/log2(4)) / (1 + 1/log2(3)); e1: 0
    assert o.ndcg_10 == pytest.approx((1 / LOG3 + 1.5 / (1 + 1 / LOG3)) / 3)
    assert o.all_evidence_r5 == 1.0
    assert o.flagged == 1.0 and o.false_flag == pytest.approx(1 / 3)
    assert o.highlight == 1.0 and o.highlight_n == 1  # only z2 is hit at rank 1, and its highlight is right
    assert o.highlight_any == pytest.approx(1 / 3)
    assert o.faithful == 1.0
    assert o.latency_ms is not None and o.latency_ms >= 0

    names = [m.slice for m in rep.slices]
    assert names == [
        "overall", "lang=zh", "lang=en", "difficulty=easy", "difficulty=hard",
        "type=fact", "type=multi-part", "type=unanswerable",
        "lang×difficulty=zh/easy", "lang×difficulty=zh/hard", "lang×difficulty=en/easy", "lang×difficulty=en/hard",
    ]
    en_easy = rep.metrics("lang×difficulty=en/easy")
    assert en_easy.answerable == 0 and en_easy.recall_1 is None and en_easy.flagged == 1.0
    assert rep.metrics("lang=zh").recall_1 == 0.5
    assert rep.metrics("difficulty=medium") is None


def test_unfaithful_answer_is_reported():
    bad = passage(24, 33, 3, 3, "bad")  # wrong line numbers
    fake = FakeAssistant({"question z1?": (hits(bad, P2), False)})
    rep = evaluate(fake, [CASES[0]])
    assert rep.overall.faithful == 0.0 and "bad" in rep.results[0].problems[0]


def test_gold_checked_before_asking():
    fake = FakeAssistant(ANSWERS)
    with pytest.raises(GoldError):
        evaluate(fake, [case("zz", ("不在语料里",))])
    assert fake.calls == []


def test_file_text_read_from_disk(tmp_path):
    from rag.corpus import load_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "mini.txt").write_bytes(TEXT.encode("utf-8"))
    docs = load_corpus(corpus)
    assert docs[0].source == SRC
    rep = evaluate(FakeAssistant(ANSWERS, docs=docs), CASES)
    assert rep.overall.faithful == 1.0 and rep.overall.recall_10 == pytest.approx(2 / 3)


def test_small_k_leaves_deep_cutoffs_empty():
    rep = evaluate(FakeAssistant(ANSWERS), CASES, k=3)
    o = rep.overall
    assert o.recall_3 == pytest.approx(2 / 3)
    assert o.recall_5 is o.recall_10 is o.mrr_10 is o.ndcg_10 is o.all_evidence_r5 is None


def test_aggregate_of_nothing():
    m = aggregate("empty", [])
    assert m.n == 0 and m.recall_1 is None and m.flagged is None and m.latency_ms is None


def test_compare_render_and_json():
    fake = FakeAssistant(ANSWERS)
    reports = compare(fake, CASES, ["hybrid", "bm25", "dense"], k=10)
    assert [r.mode for r in reports] == ["hybrid", "bm25", "dense"]
    md = render_markdown(reports)
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| mode"))
    for col in ("zh R@1", "en nDCG@10", "hard R@5", "all-ev R@5", "faithful %", "top-5 len",
                "unans. flagged %", "false-flag %", "highlight %", "latency ms"):
        assert col in header
    assert sum(line.startswith(f"| {m} |") for m in ("hybrid", "bm25", "dense") for line in lines) == 3
    assert "| lang×difficulty=en/hard |" in md and "### Slices (hybrid)" in md
    assert "not hit in the top 10: e1" in md
    row = next(line for line in lines if line.startswith("| hybrid |")).split(" | ")
    assert row[1:4] == ["0.500", "1.000", "1.000"]  # zh R@1, R@5, R@10

    data = json.loads(json.dumps(report_json(reports), ensure_ascii=False))
    assert [r["mode"] for r in data["reports"]] == ["hybrid", "bm25", "dense"]
    first = data["reports"][0]
    assert first["slices"]["overall"]["recall_1"] == pytest.approx(0.3333)
    assert first["results"][1]["span_ranks"] == [1, 3]
    assert render_markdown([]).startswith("No evaluation")


# -- gold sets: dev, and the lockbox split by id parity ----------------------------------------
def test_gold_set_from_file_and_id_parity():
    assert gold_set("eval/gold_dev.jsonl", "g001") == "dev"
    assert gold_set(Path("eval/gold_lockbox.jsonl"), "L001") == "lockbox-A"
    assert gold_set("eval/gold_lockbox.jsonl", "L002") == "lockbox-B"
    assert gold_set("eval/gold_lockbox.jsonl", "L241") == "lockbox-A"
    assert gold_set("x/extra.jsonl", "e7") == "extra"


def test_load_gold_tags_each_case_with_its_set(tmp_path):
    dev, box = tmp_path / "gold_dev.jsonl", tmp_path / "gold_lockbox.jsonl"
    dev.write_text(_line(id="g1", evidence=[EV_A]) + "\n", encoding="utf-8")
    box.write_text("\n".join(_line(id=f"L00{i}") for i in (1, 2, 3)) + "\n", encoding="utf-8")
    assert [(c.id, c.set) for c in load_gold([dev, box])] == [
        ("g1", "dev"), ("L001", "lockbox-A"), ("L002", "lockbox-B"), ("L003", "lockbox-A")]


def _in_set(c: GoldCase, name: str) -> GoldCase:
    from dataclasses import replace

    return replace(c, set=name)


# z1 (zh, rank 2) and e2 (unanswerable, flagged) in dev; z2 (zh, rank 1) in A; e1 (en, missed, flagged) in B.
SET_CASES = [_in_set(CASES[0], "dev"), _in_set(CASES[3], "dev"), _in_set(CASES[1], "lockbox-A"),
             _in_set(CASES[2], "lockbox-B")]


def test_headlines_per_set():
    rep = evaluate(FakeAssistant(ANSWERS), SET_CASES, k=10, mode="hybrid")
    by_set = {h.set: h for h in headlines(rep)}
    assert list(by_set) == ["dev", "lockbox-A", "lockbox-B"]
    dev, a, b = by_set["dev"], by_set["lockbox-A"], by_set["lockbox-B"]
    assert (dev.n, dev.zh_recall_5, dev.zh_mrr_10, dev.en_recall_5) == (2, 1.0, 0.5, None)
    assert dev.flagged == 1.0 and dev.false_flag == 0.0 and dev.faithful == 1.0
    assert (a.zh_recall_5, a.zh_mrr_10, a.flagged) == (1.0, 1.0, None)
    assert (b.en_recall_5, b.en_mrr_10, b.false_flag, b.zh_recall_5) == (0.0, 0.0, 1.0, None)
    assert b.mean_top5_chars == pytest.approx((5 + 6) / 2)


def test_compare_prints_one_table_per_mode_and_set_and_keeps_half_b_aggregate():
    reports = compare(FakeAssistant(ANSWERS), SET_CASES, ["hybrid", "bm25"], k=10)
    table = render_sets(reports).splitlines()
    assert table[0].startswith("| mode | set | n | zh R@5 | zh MRR@10 | en R@5 | en MRR@10 | unans. flagged %")
    rows = [line.split(" | ") for line in table[2:]]
    assert [(r[0].strip("| "), r[1]) for r in rows] == [
        (m, s) for m in ("hybrid", "bm25") for s in ("dev", "lockbox-A", "lockbox-B")]
    assert rows[2][5:9] == ["0.000", "0.000", "–", "100.0"]  # lockbox-B: en R@5, MRR, flagged, false flags
    md = render_markdown(reports)
    assert "### Per gold set" in md and "\n".join(table) in md
    # The held-out half is never listed question by question: e1 is missed but not named.
    assert "not hit in the top 10: none" in md and "e1" not in md
    assert "lockbox-B: 1 held-out questions" in md
    data = report_json(reports)
    assert [r["id"] for r in data["reports"][0]["results"]] == ["z1", "e2", "z2"]
    assert data["reports"][0]["sets"]["lockbox-B"]["en_recall_5"] == 0.0


# -- the real gold set and chunker (no model needed) -------------------------------------------
def test_dev_gold_spans_occur_once_in_the_report():
    cases = load_gold([ROOT / "eval" / "gold_dev.jsonl"])
    text = (ROOT / "corpus" / "ciss-2022-asia-pacific-community-outlook.txt").read_bytes().decode()
    assert len(cases) == 108
    for c in cases:
        assert (c.type == "unanswerable") == (not c.answerable), c.id
        for e in c.evidence:
            assert text.count(e) == 1, (c.id, e)


def test_real_passages_are_faithful():
    from rag.chunking import split_passages
    from rag.corpus import load_corpus
    from rag.evaluate import source_files

    docs = load_corpus(ROOT / "corpus")
    files = source_files(docs)
    for doc in docs:
        for p in split_passages(doc):
            assert passage_problem(p, files) is None


# -- a question naming its report: evidence located in that file only --------------------------
OTHER = "corpus/other.md"
#   line 1: "# 另一份报告"; line 2: "引述：证据甲在这里出现。" (quotes EV_A at offset 10); then a reference list
OTHER_TEXT = ("# 另一份报告\n引述：证据甲在这里出现。\n"
              "- [新华社](https://news.example/a/2025/0101.htm): 某某报道. 2025年。\n"
              "- [人民网](https://people.example/b/2025/0102.htm): 某某评论. 2025年。\n")
QUOTE = OTHER_TEXT.index(EV_A)
REF_START = OTHER_TEXT.index("- [新华社]")


def other_passage(start: int, end: int, pid: str) -> Passage:
    line = OTHER_TEXT.count("\n", 0, start) + 1
    return Passage(pid, OTHER, ("另一份报告",), start, end, line, OTHER_TEXT.count("\n", 0, end - 1) + 1,
                   OTHER_TEXT[start:end], "prose", ((start, end),))


Q_OTHER = other_passage(QUOTE - 3, QUOTE + len(EV_A) + 1, "q")  # 引述：证据甲在这里出现。
REFS = other_passage(REF_START, len(OTHER_TEXT), "refs")  # the two reference-list lines


@dataclass
class LibraryAssistant:
    """Two documents; records the `docs` each question was asked of."""

    answers: dict[str, tuple[list[Hit], bool]]
    calls: list = field(default_factory=list)

    def documents(self):
        return [SimpleNamespace(source=SRC, text=TEXT, path=None), SimpleNamespace(source=OTHER, text=OTHER_TEXT, path=None)]

    def scope(self, docs):
        return frozenset(d for d in (SRC, OTHER) if any(d == x or d.endswith("/" + x) for x in docs))

    def ask(self, question, k=5, mode="hybrid", docs=None):
        self.calls.append((question, None if docs is None else frozenset(docs)))
        found, not_found = self.answers[question]
        return SimpleNamespace(hits=found[:k], not_found=not_found)


def named(cid: str, evidence: tuple[str, ...], file: str, lang: str = "en") -> GoldCase:
    from dataclasses import replace

    return replace(case(cid, evidence, lang), file=file)


def test_load_gold_reads_the_file_field(tmp_path):
    g = tmp_path / "gold_library.jsonl"
    g.write_text(_line(id="B001", evidence=[EV_A], file="mini.txt") + "\n" + _line(id="B002") + "\n", encoding="utf-8")
    cases = load_gold(g)
    assert [(c.id, c.file, c.set) for c in cases] == [("B001", "mini.txt", "library-A"), ("B002", "", "library-B")]
    for bad in ("", "  ", 7):
        g.write_text(_line(id="B001", evidence=[EV_A], file=bad) + "\n", encoding="utf-8")
        with pytest.raises(GoldError, match="file must be"):
            load_gold(g)


def test_library_halves_are_split_and_held_out():
    from rag.evaluate import held_out

    assert gold_set("eval/gold_library.jsonl", "B001") == "library-A"
    assert gold_set("eval/gold_library.jsonl", "B002") == "library-B"
    assert [held_out(s) for s in ("library-B", "lockbox-B", "library-A", "lockbox-A", "dev", "extra-B")] == [
        True, True, False, False, False, False]


def test_evidence_is_located_in_the_named_file_only():
    from rag.evaluate import case_files, named_files, source_files

    files = source_files(LibraryAssistant({}).documents())
    assert set(named_files("mini.txt", files)) == {SRC} and set(named_files(OTHER, files)) == {OTHER}
    assert named_files("mini", files) == {} and named_files("ini.txt", files) == {}
    assert set(case_files(named("x", (EV_A,), "other.md"), {SRC: files[SRC]}, files)) == {OTHER}
    assert set(case_files(case("y", (EV_A,)), {SRC: files[SRC]}, files)) == {SRC}

    cases = [named("m1", (EV_A,), "mini.txt"), named("o1", (EV_A,), "other.md"), case("g1", (EV_B,))]
    answers = {"question m1?": (hits(Q_OTHER, P2), False),  # the other report's quote first: not a hit
               "question o1?": (hits(P2, Q_OTHER), False),  # the quote is the named file's own text
               "question g1?": (hits(P4), False)}
    rep = evaluate(LibraryAssistant(answers), cases, k=10)
    by_id = {r.id: r for r in rep.results}
    assert by_id["m1"].first_rank == 2 and by_id["o1"].first_rank == 2 and by_id["g1"].first_rank == 1
    assert by_id["m1"].file == "mini.txt" and by_id["g1"].file == ""
    assert rep.evidence_in == (SRC, OTHER) and rep.left_out == ()
    # Without the field, the same question is hit at rank 1 by the other report's quote.
    assert evaluate(LibraryAssistant(answers), [case("m1", (EV_A,))], k=10).results[0].first_rank == 1


def test_questions_about_absent_reports_are_left_out_and_said():
    cases = [named("m1", (EV_A,), "mini.txt"), named("gone", (EV_A,), "gone.md"), case("g1", (EV_B,))]
    fake = LibraryAssistant({"question m1?": (hits(P2), False), "question g1?": (hits(P4), False)})
    rep = evaluate(fake, cases, k=10)
    assert [r.id for r in rep.results] == ["m1", "g1"] and rep.left_out == ("gone",)
    assert "Not asked: 1 question(s)" in render_markdown([rep])
    assert report_json([rep])["reports"][0]["left_out"] == 1
    # Asked of one document only, the other document's questions cannot be asked either.
    rep = evaluate(fake, cases, k=10, docs=["mini.txt"])
    assert rep.left_out == ("gone",) and rep.scope == (SRC,)
    with pytest.raises(GoldError, match="none of the 2 questions"):
        evaluate(fake, cases[:2], k=10, docs=["other.md"])
    with pytest.raises(GoldError, match="none of the 1 questions"):
        evaluate(fake, [cases[1]], k=10)
    assert all(q != "question gone?" for q, _ in fake.calls)


def test_own_file_asks_each_question_of_its_report():
    cases = [named("m1", (EV_A,), "mini.txt"), named("o1", (EV_A,), "other.md"), case("g1", (EV_B,))]
    answers = {f"question {c.id}?": (hits(P2), False) for c in cases}
    fake = LibraryAssistant(answers)
    rep = evaluate(fake, cases, k=10, own_file=True)
    asked = dict(fake.calls[1:])  # after the warm-up
    assert asked == {"question m1?": frozenset({SRC}), "question o1?": frozenset({OTHER}), "question g1?": None}
    assert rep.own_file and "that report only" in render_markdown([rep])
    fake.calls.clear()
    evaluate(fake, cases, k=10)  # unscoped by default
    assert all(docs is None for _, docs in fake.calls)


def test_reference_list_hits_are_counted():
    from rag.evaluate import is_reference

    assert is_reference(REFS) and not is_reference(Q_OTHER) and not is_reference(P2)
    assert passage_problem(REFS, {OTHER: SourceFile.of(OTHER, OTHER_TEXT)}) is None
    cases = [named("m1", (EV_A,), "mini.txt"), named("o1", (EV_A,), "other.md")]
    answers = {"question m1?": (hits(REFS, P2, P3, P4, P1, P34), False),  # 1 of the top 5 is a reference list
               "question o1?": (hits(Q_OTHER, REFS), False)}  # 1 of 2
    rep = evaluate(LibraryAssistant(answers), cases, k=10)
    assert [r.top5_reference for r in rep.results] == [1, 1]
    assert rep.overall.reference_top5 == pytest.approx(2 / 7)
    assert headlines(rep)[0].reference_top5 == pytest.approx(2 / 7)
    assert render_sets([rep]).splitlines()[0].endswith("| top-5 len | top-5 ref-list % |")


def test_library_half_b_is_reported_in_aggregate_only():
    from dataclasses import replace

    cases = [replace(named("B001", (EV_A,), "mini.txt"), set="library-A"),
             replace(named("B002", (EV_B,), "mini.txt"), set="library-B")]
    answers = {"question B001?": (hits(P1), False), "question B002?": (hits(P1), False)}  # both missed
    reports = [evaluate(LibraryAssistant(answers), cases, k=10)]
    md = render_markdown(reports)
    assert "not hit in the top 10: B001" in md and "B002" not in md
    assert "library-B: 1 held-out questions" in md
    assert [r["id"] for r in report_json(reports)["reports"][0]["results"]] == ["B001"]
    assert [h.set for h in headlines(reports[0])] == ["library-A", "library-B"]


def test_a_sentence_stated_twice_in_a_report_is_found_at_both_places():
    from rag.evaluate import locate

    text = "摘要：增长有望达到5%。\n正文一段。\n结论：增长有望达到5%。\n"
    files = {SRC: SourceFile.of(SRC, text)}
    first, second = text.find("增长有望达到5%"), text.rfind("增长有望达到5%")
    assert locate("增长有望达到5%", files) == (Span(SRC, first, first + 8), Span(SRC, second, second + 8))
    body = Passage("b", SRC, ("结论",), second - 3, len(text) - 1, 3, 3, text[second - 3:len(text) - 1], "prose", ())
    r = score_question(case("twice", ("增长有望达到5%",)), hits(body), False, files)
    assert r.first_rank == 1 and r.span_ranks == (1,)  # the second statement answers as well as the first
    assert all_covered(r.span_ranks) and ndcg(r.span_ranks) == 1.0
