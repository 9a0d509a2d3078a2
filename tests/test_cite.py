"""rag.cite: a citation names exactly one place of the corpus, and resolves back to it."""

import pytest

from rag.chunking import ChunkSettings, passage_from_dict, passage_to_dict, split_passages
from rag.cite import hit_to_dict, reference, resolve
from rag.corpus import load_corpus
from rag.errors import CitationError
from rag.retrieve import Hit


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / ".hidden.md").write_text("# 隐藏\n\n第一行。\n第二行。\n", encoding="utf-8")
    (d / "hidden.md").write_text("# 公开\n\n另一份。\n", encoding="utf-8")
    return load_corpus(d)


@pytest.mark.parametrize(
    "spec, source, line",
    [
        ("corpus/.hidden.md:3", "corpus/.hidden.md", 3),
        ("./corpus/.hidden.md:L3", "corpus/.hidden.md", 3),
        (".hidden.md:4", "corpus/.hidden.md", 4),
        ("./.hidden.md:4", "corpus/.hidden.md", 4),
        ("hidden.md:3", "corpus/hidden.md", 3),
        ("./corpus/hidden.md:1", "corpus/hidden.md", 1),
    ],
)
def test_a_file_name_starting_with_a_dot_names_that_file(corpus, spec, source, line):
    ctx = resolve(spec, corpus, [])
    assert ctx.document.source == source and ctx.line_start == line
    assert ctx.text == ctx.document.text.splitlines()[line - 1]


def test_a_path_outside_the_corpus_is_not_turned_into_a_corpus_file(corpus):
    with pytest.raises(CitationError, match="not a file of the corpus"):
        resolve("../corpus/hidden.md:1", corpus, [])  # a prefix of characters is not stripped


def test_an_unknown_passage_or_file_names_what_is_there_not_every_file(corpus):
    passages = [p for d in corpus for p in split_passages(d, ChunkSettings())]
    n = sum(p.source == "corpus/hidden.md" for p in passages)
    assert n >= 1 and resolve("corpus/hidden.md#1", corpus, passages).passage_ids == ("corpus/hidden.md#1",)
    with pytest.raises(CitationError, match=rf"no passage 'corpus/hidden.md#9' in the index: corpus/hidden.md has passages #1 to #{n}$"):
        resolve("corpus/hidden.md#9", corpus, passages)
    others = [p for p in passages if p.source != "corpus/hidden.md"]  # a file of the corpus with none indexed
    with pytest.raises(CitationError, match=r"corpus/hidden.md has no indexed passage$"):
        resolve("corpus/hidden.md#1", corpus, others)
    with pytest.raises(CitationError, match=r"'corpus/hiden.md' is not a file of the corpus; did you mean corpus/hidden.md"):
        resolve("corpus/hiden.md:1", corpus, [])
    with pytest.raises(CitationError, match=r"'corpus/hidden.md:L3-1' ends before it starts: write the first line first \(…:L1-3\)"):
        resolve("corpus/hidden.md:L3-1", corpus, [])
    with pytest.raises(CitationError, match=r"'corpus/nothing-like-it.txt' is not a file of the corpus \(list them with: rag docs\)$"):
        resolve("corpus/nothing-like-it.txt#3", corpus, [])


def test_a_dot_folder_corpus_round_trips(tmp_path):
    d = tmp_path / ".corpus"
    d.mkdir()
    (d / "x.md").write_text("# 标题\n\n正文。\n", encoding="utf-8")
    docs = load_corpus(d)
    assert docs[0].source == ".corpus/x.md"
    assert resolve("./.corpus/x.md:3", docs, []).text == "正文。"


def test_every_passage_reference_resolves_to_its_own_lines_and_text(corpus):
    passages = [p for d in corpus for p in split_passages(d, ChunkSettings())]
    assert {p.source for p in passages} == {"corpus/.hidden.md", "corpus/hidden.md"}
    for p in passages:
        by_id = resolve(p.id, corpus, passages)
        assert (by_id.document.source, by_id.start, by_id.end, by_id.text) == (p.source, p.start, p.end, p.text)
        by_lines = resolve(reference(p), corpus, passages)
        assert (by_lines.document.source, by_lines.line_start, by_lines.line_end) == (p.source, p.line_start, p.line_end)
        assert p.id in by_lines.passage_ids


def test_passage_json_round_trips_and_a_hit_carries_it(corpus):
    p = next(p for d in corpus for p in split_passages(d, ChunkSettings()) if p.sentences)
    d = passage_to_dict(p)
    assert passage_from_dict(d) == p
    assert list(d) == ["id", "source", "section", "start", "end", "line_start", "line_end", "text", "kind", "sentences", "pages"]
    hit = hit_to_dict(Hit(passage=p, score=0.5, rank=1, sentences=p.sentences))
    assert passage_from_dict(hit) == p and (hit["rank"], hit["score"]) == (1, 0.5)
    s, e = p.sentences[0]
    assert hit["highlight"] == {"start": s, "end": e, "text": p.text[s - p.start : e - p.start]}


def test_a_hit_lists_its_link_targets_as_absolute_spans_and_keeps_the_cited_text_exact(tmp_path):
    from rag.corpus import load_corpus

    url = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQGMfIm1bXH"
    (tmp_path / "r.md").write_text(f"# 报告\n\n## 经济\n\n经济增长5%左右 [sina]({url})。详见[统计公报]({url})。\n", encoding="utf-8")
    doc = load_corpus(tmp_path)[0]
    p = next(p for p in split_passages(doc, ChunkSettings()) if "经济增长" in p.text)
    hit = hit_to_dict(Hit(passage=p, score=0.5, rank=1, sentences=p.sentences))
    assert hit["text"] == doc.text[hit["start"] : hit["end"]]  # the citation is the file's own text
    hidden = "".join(doc.text[s:e] for s, e in hit["hidden"])
    assert hidden.count(url) == 2 and "统计公报" not in hidden and "经济" not in hidden
    assert all(p.start <= s < e <= p.end for s, e in hit["hidden"])
    folded = "".join(c for i, c in enumerate(doc.text[p.start : p.end]) if not any(s <= p.start + i < e for s, e in hit["hidden"]))
    assert url not in folded and "统计公报" in folded and "经济增长5%左右" in folded


def test_a_passage_is_shown_with_links_folded_and_every_piece_maps_back_to_the_file(tmp_path):
    from rag.cite import folded, shown_text

    from .conftest import linked_corpus

    doc = load_corpus(linked_corpus(tmp_path))[0]
    p = next(p for p in split_passages(doc, ChunkSettings()) if "新华社" in p.text)
    pieces = folded(p.text, p.start)
    # End to end, in order, the file's own offsets: folding never moves a citation.
    assert pieces[0].start == p.start and pieces[-1].end == p.end
    assert all(a.end == b.start for a, b in zip(pieces, pieces[1:]))
    assert all(x.shown == doc.text[x.start : x.end] for x in pieces if x.kind != "fold")
    hidden = [[x.start, x.end] for x in pieces if x.kind == "fold"]
    assert hidden == hit_to_dict(Hit(passage=p, score=0.5, rank=1))["hidden"]
    shown = shown_text(p.text, p.start)
    assert "今年以来，据新华社报道，东盟经济增长强劲，区域贸易持续扩大[sina]。" in shown
    assert "各国认为<script>alert(1)</script>开放合作是东盟经济增长的关键[163][ft.com]。" in shown
    assert "http" not in shown and "](" not in shown
    # A link's words carry its target; a folded citation marker carries its own.
    label = next(x for x in pieces if x.shown == "新华社报道")
    assert label.kind == "label" and label.url.startswith("https://www.news.cn/politics/")
    marker = next(x for x in pieces if x.shown == "[sina]")
    assert marker.kind == "fold" and marker.url.startswith("https://finance.sina.com.cn/")
    # Nothing to fold: the text as it is.
    assert shown_text("东盟的中心地位。", 7) == "东盟的中心地位。"
    assert folded("", 3) == []
