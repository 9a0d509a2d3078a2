import re
from contextlib import contextmanager

import pytest

from rag.errors import InvalidArgumentError
from rag.retrieve import fuse, fuse_scores


@contextmanager
def embedded(enc):
    """The texts `enc` embeds as queries while the block runs (in order), each still embedded."""
    seen: list[str] = []
    real = enc.encode_queries
    enc.encode_queries = lambda texts: seen.extend(texts) or real(texts)
    try:
        yield seen
    finally:
        del enc.encode_queries


def test_rrf_by_hand():
    # a: 1/(60+1) + 1/(60+2); b: 1/(60+2) + 1/(60+1); c: 1/(60+3); d: 1/(60+1)... only in list 2 at rank 3
    fused = dict(fuse([["a", "b", "c"], ["b", "a", "d"]]))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63) and fused["d"] == pytest.approx(1 / 63)


def test_rrf_counts_a_duplicate_once_and_ranks_after_it_shift_up():
    fused = dict(fuse([["a", "a", "b"]]))
    assert fused == {"a": pytest.approx(1 / 61), "b": pytest.approx(1 / 62)}


def test_rrf_order_is_best_first():
    assert [x for x, _ in fuse([["x", "y"], ["y", "z"]])] == ["y", "x", "z"]


def test_score_fusion_by_hand():
    # dense z: a (0.9-0.6)/0.2449=1.2247, b 0, c -1.2247; bm25 z: b 1, d -1 (a, c missing: floor -1)
    dense = [("a", 0.9), ("b", 0.6), ("c", 0.3)]
    bm25 = [("b", 8.0), ("d", 2.0)]
    fused = dict(fuse_scores([dense, bm25], [0.5, 0.5]))
    z = 0.3 / (0.06 ** 0.5)
    assert fused["a"] == pytest.approx((z - 1) / 2)
    assert fused["b"] == pytest.approx((0 + 1) / 2)
    assert fused["c"] == pytest.approx((-z - 1) / 2)
    assert fused["d"] == pytest.approx((-z - 1) / 2)  # missing from dense: dense's lowest z
    assert [x for x, _ in fuse_scores([dense, bm25], [0.5, 0.5])] == ["b", "a", "c", "d"]  # ties by item


def test_score_fusion_lets_a_clear_first_place_beat_two_seconds():
    # RRF puts "both" (2nd and 2nd) first, above "sure" (1st far ahead in dense, 6th in BM25): scores do not.
    dense = [("sure", 0.95), ("both", 0.80), ("y", 0.79), ("z", 0.78), ("w", 0.77), ("x", 0.76)]
    bm25 = [("x", 9.0), ("both", 8.9), ("y", 8.8), ("z", 8.7), ("w", 8.6), ("sure", 8.5),
            ("v", 8.4), ("u", 8.3), ("t", 8.2), ("s", 8.1)]
    assert [x for x, _ in fuse([[p for p, _ in dense], [p for p, _ in bm25]])][0] == "both"
    assert fuse_scores([dense, bm25], [0.5, 0.5])[0][0] == "sure"


def test_score_fusion_edge_cases():
    assert fuse_scores([[], []], [0.5, 0.5]) == []
    only = [("a", 0.9), ("b", 0.5)]
    assert [x for x, _ in fuse_scores([only, []], [0.5, 0.5])] == ["a", "b"]  # BM25 found nothing: dense decides
    assert dict(fuse_scores([[("a", 3.0), ("b", 3.0)]], [1.0])) == {"a": 0.0, "b": 0.0}  # equal scores: all 0
    assert dict(fuse_scores([[("a", 1.0), ("a", 0.0), ("b", 0.0)]], [1.0]))["a"] > 0  # first listing counts


def test_an_acronym_gate_needs_an_acronym_in_capitals():
    from rag.retrieve import _ASKS_EXPANSION

    assert _ASKS_EXPANSION.search("What is IPEF?") and _ASKS_EXPANSION.search("what are the 5Cs")
    # "total" is no acronym: the gate once matched any word after "what was the" (case-folded).
    assert not _ASKS_EXPANSION.search("What was the total value of trade among RCEP members in 2022?")


def test_search_rejects_bad_k_and_mode(hash_assistant):
    with pytest.raises(InvalidArgumentError):
        hash_assistant.ask("东盟", k=0)
    with pytest.raises(InvalidArgumentError):
        hash_assistant.ask("东盟", mode="magic")
    with pytest.raises(InvalidArgumentError):  # a measurement variant is not a search mode
        hash_assistant.ask("东盟", mode="hybrid-nobridge")
    from rag.retrieve import search

    with pytest.raises(InvalidArgumentError):
        search(hash_assistant.index(), "东盟", 0, "bm25")


def test_bridge_false_embeds_an_english_question_as_it_is(hash_assistant):
    from rag.retrieve import search

    index, enc = hash_assistant.index(), hash_assistant.query_encoder()
    q = "What does the report recommend on population ageing?"
    with embedded(enc) as seen:
        search(index, q, 5, "dense", enc)
        search(index, q, 5, "dense", enc, bridge=False)
    assert seen[0].startswith(q + " ") and re.search(r"[\u4e00-\u9fff]", seen[0])  # bridged with Chinese terms
    assert seen[1] == q


def test_bridge_terms_keep_distinct_chinese_words_the_corpus_uses():
    from rag.retrieve import bridge_terms, dense_query

    tokens = ["ageing", "人口老龄化", "人口", "老龄化", "老龄", "银发族", "population", "人口老龄化"]
    vocab = {"人口老龄化", "人口", "老龄化", "老龄"}
    assert bridge_terms(tokens, vocab) == ["人口老龄化"]  # parts of a kept word and unknown words add nothing
    assert dense_query("What about ageing?", tokens, vocab) == "What about ageing? 人口老龄化"
    assert dense_query("人口老龄化怎么办？", tokens, vocab) == "人口老龄化怎么办？"  # Chinese questions are left alone


def test_a_capital_brings_in_its_country_for_both_retrievers(dictionary_cache, monkeypatch):
    from rag import dictionary, names
    from rag.retrieve import dense_query, metonyms

    monkeypatch.setenv("RAG_CACHE_DIR", str(dictionary_cache))
    dictionary.english_dictionary.cache_clear()
    names.proper_nouns.cache_clear()
    try:
        vocab = {"印尼", "海洋"}
        assert metonyms("Which maritime vision of Jakarta is listed?", vocab) == ["印尼"]  # only words the corpus uses
        assert metonyms("Which maritime vision is listed?", vocab) == []
        assert dense_query("雅加达的海洋愿景是什么？", [], vocab, ["印尼"]) == "雅加达的海洋愿景是什么？ 印尼"
    finally:
        dictionary.english_dictionary.cache_clear()
        names.proper_nouns.cache_clear()


def test_in_a_library_a_capital_standing_for_its_government_is_searched_as_the_country(dictionary_cache, monkeypatch):
    from rag import dictionary, names
    from rag.expand import sense_groups
    from rag.retrieve import without_capitals

    monkeypatch.setenv("RAG_CACHE_DIR", str(dictionary_cache))
    dictionary.english_dictionary.cache_clear()
    names.proper_nouns.cache_clear()
    try:
        groups = sense_groups("Which red lines of Beijing does Washington test over Taiwan?", {})
        kept = without_capitals(groups)
        assert any("北京" in g.terms for g in groups) and not any("北京" in g.terms for g in kept)
        # Other names and words keep their renderings (华盛顿 is a person's name too, not only a capital).
        assert [g for g in groups if g.key.lower() != "beijing"] == kept and len(kept) == 4
    finally:
        dictionary.english_dictionary.cache_clear()
        names.proper_nouns.cache_clear()


def test_an_acronym_question_finds_where_the_report_spells_it_out(real_assistant):
    from rag.retrieve import definitions

    index = real_assistant.index()
    lines = lambda ps: [index.passages[p].line_start for p in ps]  # noqa: E731
    doc = definitions(index, "DOC是哪份文件的英文缩写？")
    assert len(doc) == 2 and lines(doc) == sorted(lines(doc))  # both definitions, first use first
    assert all("《南海各方行为宣言》" in index.passages[p].text for p in doc)
    assert definitions(index, "What does CICA stand for?") == definitions(index, "CICA指的是什么机制？") != []
    assert definitions(index, "东盟如何看待 IPEF？") == []  # not asking what the acronym is
    assert definitions(index, "What does XYZ stand for?") == []  # an acronym the report never defines
    top = real_assistant.ask("DOC是哪份文件的英文缩写？", k=3).hits
    assert top[0].passage.line_start == lines(doc)[0]  # the first definition comes first
    assert top[0].score >= top[1].score


def test_passage_sentences_are_ranked_best_first_and_the_first_is_the_highlight(real_assistant):
    hits = real_assistant.ask("When did Xi Jinping put forward the Global Security Initiative?", k=3).hits
    for h in hits:
        assert h.highlight == h.sentences[0]
        assert sorted(h.sentences) == sorted(h.passage.sentences)
    p = hits[0].passage
    assert any("2022 年 4 月" in p.text[s - p.start : e - p.start] for s, e in hits[0].sentences[:2])


def test_cover_and_back_matter_rank_below_body_text_that_matches_as_well():
    from types import SimpleNamespace

    from rag.retrieve import MATTER_PENALTY, _matter_last

    kinds = ["cover", "prose", "recommendation", "back"]
    index = SimpleNamespace(passages=[SimpleNamespace(kind=k) for k in kinds])
    ranked = [(0, 1.2), (1, 1.0), (3, 0.9), (2, 0.5)]
    out = _matter_last(index, ranked)
    assert [p for p, _ in out] == [1, 2, 0, 3]
    assert dict(out)[0] == pytest.approx(1.2 - MATTER_PENALTY) and dict(out)[1] == 1.0
    assert _matter_last(index, [(0, 5.0), (1, 1.0)])[0][0] == 0  # far ahead, it still comes first
    assert _matter_last(index, [(1, 1.0), (2, 0.5)]) == [(1, 1.0), (2, 0.5)]


def test_bridge_terms_are_whole_terms_not_the_bigrams_of_a_long_one():
    from rag.retrieve import bridge_terms

    # 东盟's long CC-CEDICT rendering 东南亚国家联盟 is not a word of the report, but its bigrams are
    # BM25 tokens it knows: given tokens, they crowd out the next words; given terms, they do not.
    vocab = {"东盟", "东南", "南亚", "亚国", "国家", "家联", "联盟", "中国", "同意", "全面", "战略"}
    terms = ["东盟", "东南亚国家联盟", "中国", "同意", "全面", "战略"]
    tokens = [t for term in terms for t in ([term] + [term[i:i + 2] for i in range(len(term) - 1)])]
    assert bridge_terms(terms, vocab) == ["东盟", "中国", "同意", "全面", "战略"]
    assert "家联" in bridge_terms(tokens, vocab)  # what feeding it tokens did


def test_hybrid_fusion_weighs_dense_by_the_questions_language(hash_assistant, monkeypatch):
    from rag import config, retrieve

    seen = []
    real = retrieve.fuse_scores
    monkeypatch.setattr(retrieve, "fuse_scores", lambda lists, weights: seen.append(list(weights)) or real(lists, weights))
    index, enc = hash_assistant.index(), hash_assistant.query_encoder()
    retrieve.search(index, "东盟的中心地位是什么？", 5, "hybrid", enc)
    retrieve.search(index, "What is ASEAN centrality?", 5, "hybrid", enc)
    assert seen == [[config.DENSE_WEIGHT["zh"], 1 - config.DENSE_WEIGHT["zh"]],
                    [config.DENSE_WEIGHT["en"], 1 - config.DENSE_WEIGHT["en"]]]
    assert config.DENSE_WEIGHT["en"] > config.DENSE_WEIGHT["zh"]  # English BM25 runs on dictionary renderings


class _TinyIndex:
    """What `dense_scores` reads of an index: passages (their sources), unit rows, vectors, FAISS,
    each file's slice (`ranges`), and the FAISS index's own dense search and centroids."""

    from rag.store.faiss import Index as _Index

    dense_scores = _Index.dense_scores
    dense_scores_in = _Index.dense_scores_in
    file_centroids = _Index.file_centroids

    def __init__(self, sources, vectors):
        import faiss
        import numpy as np
        from types import SimpleNamespace

        self.passages = [SimpleNamespace(source=s) for s in sources]
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.vectors /= np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.unit_passage = np.arange(len(sources), dtype=np.int32)
        self.unit_sentence = np.full(len(sources), -1, dtype=np.int32)
        self.dense = faiss.IndexFlatIP(self.vectors.shape[1])
        self.dense.add(self.vectors)
        self.ranges = {}
        for i, s in enumerate(sources):  # one unit per passage, files contiguous
            lo = self.ranges.get(s, (i,))[0]
            self.ranges[s] = (lo, i + 1, lo, i + 1)


def _unit(v):
    import numpy as np

    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_document_prior_lets_the_report_about_the_question_outrank_another_reports_hub():
    from rag.retrieve import dense_scores

    # Report a.md is about the question as a whole; b.md is about something else but has one
    # generic passage (a hub) that is the single nearest passage to the question.
    index = _TinyIndex(
        ["a.md", "a.md", "a.md", "b.md", "b.md", "b.md"],
        [[0.8, 0.0, 0.6], [0.8, 0.0, -0.6], [0.7, 0.0, 0.71], [0.9, 0.436, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]],
    )
    q = _unit([1.0, 0.0, 0.0])
    plain = dense_scores(index, q, 6, file_prior=0.0)
    assert max(plain, key=plain.get) == 3  # without the prior, b.md's hub wins
    scored = dense_scores(index, q, 6, file_prior=1.0)
    assert max(scored, key=scored.get) in (0, 1, 2)
    # The prior is one amount per document: the order within a document does not change.
    assert sorted((0, 1, 2), key=plain.get) == sorted((0, 1, 2), key=scored.get)


def test_document_prior_changes_nothing_with_one_document():
    from rag.retrieve import dense_scores

    index = _TinyIndex(["a.md"] * 4, [[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [0.5, 0.5, 0.7]])
    q = _unit([0.9, 0.3, 0.1])
    assert dense_scores(index, q, 4, file_prior=1.0) == dense_scores(index, q, 4, file_prior=0.0)


def _stated_index():
    """Three one-sentence passages and one two-sentence passage; no vectors (sentences by terms)."""
    from types import SimpleNamespace

    texts = ["东盟与中国的合作不断深化。", "东盟与中国的贸易额达到 9753 亿美元。", "双方在 2021 年建立全面战略伙伴关系。",
             "东盟与中国的合作不断深化。双方贸易额达到 9753 亿美元。"]
    passages = []
    for t in texts:
        cut = t.index("。") + 1
        spans = ((0, cut), (cut, len(t))) if cut < len(t) else ((0, len(t)),)
        passages.append(SimpleNamespace(text=t, start=0, end=len(t), sentences=spans, kind="prose"))
    return SimpleNamespace(passages=passages)


def test_a_passage_whose_best_sentence_states_the_asked_figure_gains_a_little():
    from rag.retrieve import ANSWER_TYPE_BOOST, _stated_first

    index = _stated_index()
    ranked = [(0, 1.0), (1, 0.9), (2, 0.5)]
    out = _stated_first(index, "东盟与中国的贸易额是多少？", ranked, None, ["东盟", "中国", "贸易额"], {})
    assert [p for p, _ in out] == [1, 0, 2]  # a figure: 0.9 + boost passes 1.0
    assert dict(out)[1] == pytest.approx(0.9 + ANSWER_TYPE_BOOST) and dict(out)[0] == 1.0
    assert dict(out)[2] == 0.5  # a year is not a figure
    # A date question: the passage with a year gains instead.
    out = _stated_first(index, "东盟与中国何时建立全面战略伙伴关系？", ranked, None, ["全面", "战略", "伙伴"], {})
    assert dict(out)[2] == pytest.approx(0.5 + ANSWER_TYPE_BOOST) and dict(out)[1] == 0.9
    # Small: a passage far behind stays behind; an open question changes nothing.
    assert [p for p, _ in _stated_first(index, "贸易额是多少？", [(0, 2.0), (1, 0.9)], None, ["贸易额"], {})] == [0, 1]
    assert _stated_first(index, "东盟与中国的合作有何意义？", ranked, None, ["合作"], {}) == ranked


def test_the_answer_type_boost_reads_the_passages_best_sentence_and_keeps_it_for_the_hit():
    from rag.retrieve import _stated_first, rank_sentences

    index = _stated_index()
    kept: dict = {}
    # Passage 3's figure sits in the sentence that matches the question best: it gains.
    out = _stated_first(index, "How large is the trade between ASEAN and China?", [(0, 1.0), (3, 0.9)], None, ["贸易额"], kept)
    assert [p for p, _ in out] == [3, 0]
    assert kept[3] == rank_sentences(index, 3, None, ["贸易额"])
    # When its best sentence is the other one, it does not.
    out = _stated_first(index, "How large is the trade between ASEAN and China?", [(0, 1.0), (3, 0.9)], None, ["深化", "合作"], {})
    assert [p for p, _ in out] == [0, 3]


def _with_terms(index, texts):
    """`index` with BM25 over `texts` (whitespace-separated terms), one text per passage."""
    from rag.bm25 import LexicalIndex

    index.lexical = LexicalIndex.build(texts, tokenizer=str.split)
    return index


def test_bridge_terms_come_from_the_documents_near_the_question():
    from rag.retrieve import bridge_terms, near_vocabulary

    # Report a.md is about the question; b.md, far from it, is the only one using the off-sense 安保
    # ("security" as in guards) of a word the question's expansion renders three ways.
    index = _with_terms(
        _TinyIndex(["a.md", "a.md", "b.md", "b.md"], [[1, 0, 0.1], [0.9, 0.2, 0], [0, 1, 0], [0, 0.9, 0.3]]),
        ["地区 安全 合作", "安全 架构", "安保 公司", "保安 人员"],
    )
    q = _unit([1.0, 0.1, 0.0])
    expansion = ["安保", "安全", "保安", "合作"]
    assert bridge_terms(expansion, index.lexical.vocab) == ["安保", "安全", "保安", "合作"]
    near = near_vocabulary(index, q, n=1)
    assert bridge_terms(expansion, near) == ["安全", "合作"]
    assert "安保" not in near and "没有" not in near and 3 not in near
    # Every document near: the library's whole vocabulary, the same bridge terms as before.
    assert bridge_terms(expansion, near_vocabulary(index, q, n=2)) == bridge_terms(expansion, index.lexical.vocab)


def test_fused_document_prior_ranks_the_report_about_the_question_above_another_reports_rare_word():
    from rag.retrieve import document_prior

    index = _TinyIndex(
        ["a.md", "a.md", "b.md", "b.md", "c.md"], [[1, 0, 0.1], [0.9, 0.2, 0], [0, 1, 0], [0, 0.9, 0.3], [0, 0, 1]]
    )
    q = _unit([1.0, 0.1, 0.0])
    # Fusion put b.md's passage 2 (a rare word BM25 loved) just above a.md's passages.
    fused = [(2, 1.10), (0, 1.00), (1, 0.40), (3, -0.2), (4, -0.5)]
    ranked = document_prior(index, fused, q, weight=0.2)
    assert ranked[0][0] == 0
    assert [p for p, _ in ranked if p in (0, 1)] == [0, 1]  # one amount per document: its order stays
    assert document_prior(index, fused, q, weight=0.0) == fused
    # A passage far ahead still wins: the prior is a nudge, not a filter.
    assert document_prior(index, [(2, 3.0), (0, 1.0)], q, weight=0.2)[0][0] == 2


def test_fused_document_prior_changes_nothing_with_one_document():
    from rag.retrieve import document_prior

    index = _TinyIndex(["a.md"] * 3, [[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0]])
    fused = [(1, 0.9), (0, 0.5), (2, 0.1)]
    assert document_prior(index, fused, _unit([0.9, 0.3, 0.1]), weight=0.2) == fused


def test_passages_of_documents_that_never_mention_the_questions_year_rank_lower():
    from rag.retrieve import UNDATED_PENALTY, undated_last

    index = _TinyIndex(["a.md", "a.md", "b.md", "b.md"], [[1, 0, 0], [0.9, 0.2, 0], [0, 1, 0], [0, 0.9, 0.3]])
    # b.md's passage 2 matched the words best, but only a.md speaks of the year asked about.
    fused = [(2, 1.2), (0, 1.0), (3, 0.1), (1, -0.5)]
    ranked = undated_last(index, fused, frozenset({"a.md"}))
    assert [p for p, _ in ranked] == [0, 2, 1, 3]
    assert dict(ranked)[2] == 1.2 - UNDATED_PENALTY and dict(ranked)[0] == 1.0
    # A passage far ahead still wins: a nudge, not a filter.
    assert undated_last(index, [(2, 3.0), (0, 1.0)], frozenset({"a.md"}))[0][0] == 2
    # Nothing to narrow by (no year named, or every document dated): unchanged.
    assert undated_last(index, fused, None) == fused
    assert undated_last(index, fused, frozenset({"a.md", "b.md"})) == fused


def test_a_year_changes_nothing_with_one_document():
    from rag.retrieve import undated_last

    index = _TinyIndex(["a.md"] * 3, [[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0]])
    fused = [(1, 0.9), (0, 0.5), (2, 0.1)]
    assert undated_last(index, fused, frozenset({"a.md"})) == fused


def test_an_english_words_renderings_weigh_as_one_bm25_term_in_a_library_only(hash_assistant, report_corpus, monkeypatch):
    from rag import retrieve
    from rag.bm25 import LexicalIndex

    asked = []
    real = LexicalIndex.group_weights
    monkeypatch.setattr(LexicalIndex, "group_weights", lambda self, groups: asked.append(1) or real(self, groups))
    question = "How does the report see security in the region?"
    single = hash_assistant.index()
    retrieve.search(single, question, 5, "bm25")
    assert asked == []  # one report: each rendering keeps its own IDF (as measured best there)
    retrieve.search(single, question, 5, "bm25", synonyms=True)
    assert asked == [1]
    # The report among other reports: renderings weigh as one term unless turned off.
    (report_corpus / "other.md").write_text("# 安保\n\n安保公司的保安人员负责地区安全。\n\n安保行业的地方标准。\n", encoding="utf-8")
    from rag.assistant import Assistant

    library = Assistant(corpus_dir=report_corpus, index_dir=hash_assistant.index_dir, encoder=hash_assistant.encoder,
                        on_notice=lambda m: None).index()
    assert len(library.ranges) == 2
    asked.clear()
    hits = retrieve.search(library, question, 5, "bm25")
    assert asked == [1] and hits
    retrieve.search(library, question, 5, "bm25", synonyms=False)
    assert asked == [1]


def test_within_documents_gives_a_report_its_own_order_and_brings_in_what_the_library_lists_missed():
    from rag.bm25 import LexicalIndex
    from rag.retrieve import fuse_scores, within_documents

    # a.md: the report; 合作 is its recurring word (every passage), 南海 its rare one. b.md: another
    # report where 合作 is rare. The library's IDF scores 合作 as telling (the other report seldom
    # uses it); a.md alone scores 南海 as what sets passage 1 apart.
    sources = ["a.md"] * 4 + ["b.md"] * 3
    texts = ["合作 合作 东盟", "南海 合作", "合作 峰会", "合作 机制", "天气 预报", "合作 城市", "交通 城市"]
    vectors = [[1, 0.1, 0], [1, 0.12, 0], [1, 0.08, 0], [1, 0.05, 0.1], [0, 1, 0], [0.5, 0.9, 0], [0, 0.9, 0.4]]
    index = _TinyIndex(sources, vectors)
    index.lexical = LexicalIndex.build(texts, tokenizer=str.split, groups=sources)
    q = _unit([1.0, 0.1, 0.0])
    tokens = ["南海", "合作"]
    # What fusion over the library's lists gave (passage 3 missing from both lists).
    ranked = [(0, 1.2), (5, 1.0), (1, 0.9), (2, 0.2), (4, -0.5)]
    out = within_documents(index, ranked, q, tokens, None, 0.5)
    alone = fuse_scores([sorted(index.dense_scores_in(q, 200, "a.md").items(), key=lambda kv: -kv[1]),
                         index.lexical.search_in(tokens, 50, (0, 4))], [0.5, 0.5])
    assert alone[0][0] == 1  # a.md alone ranks its 南海 passage first
    scores = dict(out)
    assert scores[1] == pytest.approx((0.9 + dict(alone)[1]) / 2)  # the mean of the library's score and its own
    assert [p for p, _ in out][0] == 1
    assert 3 in scores  # a passage of a ranked document that the library's lists missed comes in
    assert within_documents(index, ranked, q, tokens, None, 0.5, weight=0.0) == ranked
    # One document: nothing to rank apart.
    one = _TinyIndex(["a.md"] * 3, [[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0]])
    assert within_documents(one, [(1, 0.9), (0, 0.5)], q, tokens, None, 0.5) == [(1, 0.9), (0, 0.5)]


def test_a_files_own_dense_search_is_the_exact_search_of_that_file_alone():
    import numpy as np

    from rag.store import best_units

    index = _TinyIndex(["a.md", "a.md", "b.md", "b.md", "b.md"],
                       [[1, 0, 0], [0.7, 0.7, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    q = _unit([1.0, 0.2, 0.0])
    got = index.dense_scores_in(q, 10, "b.md")
    assert set(got) == {2, 3, 4}
    assert got[2] == pytest.approx(float(index.vectors[2] @ q))
    assert list(index.dense_scores_in(q, 1, "b.md")) == [2]  # the nearest unit only
    assert best_units(index.vectors[:0], np.zeros(0, np.int64), q, 5) == {}


def test_a_question_naming_a_year_ranks_the_report_that_speaks_of_it_higher(tmp_path, monkeypatch):
    from rag import retrieve
    from rag.assistant import Assistant

    from .conftest import HashEncoder

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # a.md names the year in another section than its passage on the summit, so that passage does
    # not hold the BM25 term "2022": only its document's mention of the year can lift it.
    (corpus / "a.md").write_text("# 回顾\n\n## 背景\n\n本文回顾二〇二二年，即2022年的地区形势与各国外交政策的主要变化。\n\n"
                                 "## 峰会\n\n领导人峰会在曼谷召开，各方同意深化区域合作。\n", encoding="utf-8")
    (corpus / "b.md").write_text("# 峰会\n\n## 峰会\n\n领导人峰会在庆州举行，各方同意深化区域合作。\n\n"
                                 "## 背景\n\n这是2025年的会议，与会者讨论了人工智能与人口结构的变化。\n", encoding="utf-8")
    a = Assistant(corpus_dir=corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=lambda m: None)
    question = "2022年领导人峰会在哪里举行？"
    # The year lever alone: each document ranking its own passages (within_documents) is another lever.
    monkeypatch.setattr(retrieve.within_documents, "__defaults__", (0.0, retrieve.WITHIN_DOC_FROM))
    assert a.grounder().dated(question) == frozenset({"corpus/a.md"})
    with_year = {h.passage.id: h.score for h in a.ask(question, k=4).hits}
    monkeypatch.setattr(retrieve.undated_last, "__defaults__", (0.0,))
    without = {h.passage.id: h.score for h in a.ask(question, k=4).hits}
    # b.md never mentions 2022: each of its passages loses one z unit, a.md's keep their scores.
    for pid, score in without.items():
        lost = retrieve.UNDATED_PENALTY if pid.startswith("corpus/b.md") else 0.0
        assert abs(with_year[pid] - (score - lost)) < 1e-9
    assert without["corpus/b.md#2"] > without["corpus/a.md#2"] and with_year["corpus/a.md#2"] > with_year["corpus/b.md#2"]


def test_in_a_library_an_english_question_is_embedded_without_the_report_it_names(tmp_path):
    import shutil

    from rag.assistant import Assistant
    from rag.retrieve import search

    from .conftest import REPORT, HashEncoder

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPORT, corpus / REPORT.name)
    (corpus / "other.md").write_text("# 人口报告\n\n本报告基于公开信息，分析人口老龄化的趋势。\n", encoding="utf-8")
    a = Assistant(corpus_dir=corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=lambda m: None)
    index, enc = a.index(), a.query_encoder()
    q = "What does the report recommend on population ageing?"
    with embedded(enc) as seen:
        search(index, q, 5, "dense", enc)
    # First the question as a single report embeds it (to find the documents near it), then without
    # "the report", bridged with those documents' words.
    assert seen[0].startswith(q + " ")
    assert seen[-1].startswith("What does recommend on population ageing? ") and "report" not in seen[-1]
    with embedded(enc) as seen:
        search(index, "报告对人口老龄化有什么建议？", 5, "dense", enc)
    assert seen == ["报告对人口老龄化有什么建议？"]  # a Chinese question is embedded as it is


def test_an_english_questions_dates_are_embedded_as_the_reports_write_them(hash_assistant):
    from rag.retrieve import search

    index, enc = hash_assistant.index(), hash_assistant.query_encoder()
    with embedded(enc) as seen:
        search(index, "What did ASEAN agree in November 2022?", 5, "dense", enc)
        search(index, "What did ASEAN agree in November 2022?", 5, "dense", enc, bridge=False)
    assert seen[0].endswith(" 2022年11月")
    assert "2022年11月" not in seen[1]
