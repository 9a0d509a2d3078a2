"""Property tests: section parsing and chunking on arbitrary report-shaped text, and question fuzzing.

Report-shaped text mixes what the real report has and what a converted PDF can throw at the parser:
CJK and Latin prose, emoji (incl. ZWJ sequences and flags), combining marks, a BOM, CRLF and lone CR
line endings, tabs and ideographic spaces, empty sections, headings with no body, very long lines,
`第X部分` / `（一）` / `(七)` / `**bold**` headings, `1.1` recommendations, and cover/back-matter lines.

What may be left out of the passages, precisely: the heading lines the parser recognised (the spans
`Section.heading` of the title and of every section), the paragraphs it marked as not indexed (a
`key: value` header, a link dump: `rag.chunking.UNINDEXED_KINDS`) and whitespace (`str.isspace`).
Every other character of the file must be inside some passage.

The number of examples each property ran is printed at the end of the module (see `_report`).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from rag.chunking import ChunkSettings, split_passages
from rag.corpus import load_document
from rag.errors import CorpusError, RagError
from rag.sections import parse_sections, walk

from .conftest import REPORT, built_hash_assistant

EXAMPLES = int(os.environ.get("RAG_PROPERTY_EXAMPLES", "300"))
PROPS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RUNS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"  {name}: {n} generated inputs" for name, n in sorted(RUNS.items())]
    text = "\nhypothesis examples run per property:\n" + "\n".join(lines)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(text)
    else:  # pragma: no cover
        print(text)


# -- report-shaped text -------------------------------------------------------------------------
CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
LATIN = st.sampled_from(["ASEAN", "IPEF", "the", "report", "RCEP", "G20", "5.1", "COP27", "e-mail", "Asia-Pacific", "don't"])
EMOJI = st.sampled_from(["😀", "🇨🇳", "👩\u200d👩\u200d👧", "✊🏽", "🀄"])
COMBINING = st.sampled_from(["e\u0301", "\u0300", "a\u0308\u0323", "\u20dd", "ก\u0e31"])
PUNCT = st.sampled_from(["。", "！", "？", "；", "，", "、", "：", ",", ".", "!", "?", ";", ":", "“", "”", "（", "）", "《", "》", "…", "”。", "」"])
SPACE = st.sampled_from([" ", "\t", "\u3000", "\u00a0", "  ", "\u200b", "\ufeff", "\x0b", "\x0c", "\x85", "\u2028"])
MARKUP = st.sampled_from(["#", "**", "*", "## ", "1.1 ", "(", ")", "[", "](", "http://x.org/a", "a@b.cn"])

FRAGMENT = st.one_of(
    st.text(CJK, min_size=1, max_size=12), LATIN, EMOJI, COMBINING, PUNCT, SPACE, MARKUP,
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00\r\n"), max_size=5),
)
SENTENCE = st.builds(lambda parts, end: "".join(parts) + end, st.lists(FRAGMENT, min_size=1, max_size=25),
                     st.sampled_from(["。", "！", "？", "；", ".", "", "，", "”", "。”"]))
PROSE = st.builds("".join, st.lists(SENTENCE, min_size=1, max_size=6))
LONG = st.builds(lambda s, n: (s * n)[:4000], SENTENCE, st.integers(20, 200))
NUM_ZH = st.sampled_from(["一", "二", "三", "四", "五", "六", "七", "八", "九", "十"])
TITLE = st.text(st.one_of(CJK, st.sampled_from([" ", "A", "与", "和"])), min_size=0, max_size=14)


def _heading(parts) -> str:
    form, n, title, hashes = parts
    return {
        "md": f"{hashes} {title}",
        "md-closed": f"{hashes} {title} {hashes}",
        "part": f"{hashes} 第{n}部分 {title}",
        "part-bare": f"第{n}部分 {title}",
        "area": f"{hashes} （{n}）{title}",
        "area-half": f"({n}) {title}",
        "area-bold": f"**（{n}）{title}**",
        "area-md-bold": f"{hashes} **({n}) {title}**",
        "bold": f"**{title}**",
        "empty-md": hashes,
    }[form]


HEADING = st.builds(
    _heading,
    st.tuples(st.sampled_from(["md", "md-closed", "part", "part-bare", "area", "area-half", "area-bold", "area-md-bold", "bold", "empty-md"]),
              NUM_ZH, TITLE, st.sampled_from(["#", "##", "###", "####"])),
)
RECOMMENDATION = st.builds(lambda a, b, sep, body: f"{a}.{b}{sep}{body}", st.integers(1, 12), st.integers(1, 12),
                           st.sampled_from([" ", "\t", "\u3000", ""]), PROSE)
MATTER = st.sampled_from(["清华大学战略与安全研究中心", "2022年12月", "010-62771388", "ciss@tsinghua.edu.cn", "www.ciss.tsinghua.edu.cn",
                          "地址 北京市海淀区", "CISS", "亚太命运共同体展望", "An Outlook on Asia-Pacific Community"])
BLANK = st.sampled_from(["", " ", "\t", "\u3000", "  \t "])
LINE = st.one_of(PROSE, PROSE, PROSE, HEADING, HEADING, RECOMMENDATION, MATTER, BLANK, BLANK, LONG)
EOL = st.sampled_from(["\n", "\n", "\r\n", "\r"])


@st.composite
def report_text(draw, min_lines: int = 1, max_lines: int = 40) -> str:
    lines = draw(st.lists(LINE, min_size=min_lines, max_size=max_lines))
    out = ["\ufeff"] if draw(st.booleans()) and draw(st.booleans()) else []
    for line in lines:
        out.append(line)
        out.append(draw(EOL))
        if draw(st.integers(0, 3)) == 0:  # a blank line between blocks, often
            out.append(draw(EOL))
    if draw(st.booleans()):
        out.pop()  # no final line break
    return "".join(out)


def document(text: str):
    """The text written as a corpus file (UTF-8 bytes, line endings untouched) and loaded back."""
    with tempfile.TemporaryDirectory() as d:
        corpus = Path(d) / "corpus"
        corpus.mkdir()
        f = corpus / "report.txt"
        f.write_bytes(text.encode("utf-8"))
        if not text.encode("utf-8").strip():  # only ASCII whitespace: refused as an empty file, by design
            with pytest.raises(CorpusError, match="empty"):
                load_document(f, corpus)
            assume(False)
        doc = load_document(f, corpus)
    assert doc.text == text
    return doc


def reference_lines(text: str) -> list[int]:
    """1-based line of every character, written independently of rag.corpus.

    `\\n`, `\\r\\n` and a lone `\\r` end a line, and belong to the line they end."""
    lines, line, i = [], 1, 0
    while i < len(text):
        c = text[i]
        if c == "\r" and text[i + 1 : i + 2] == "\n":
            lines += [line, line]
            i += 2
            line += 1
            continue
        lines.append(line)
        if c in "\r\n":
            line += 1
        i += 1
    return lines


def heading_spans(text: str) -> list[tuple[int, int]]:
    """Heading lines, and paragraphs deliberately not indexed (a header, a link dump)."""
    from rag.chunking import UNINDEXED_KINDS

    sections = list(walk(parse_sections(text)))
    return [s.heading for s in sections if s.heading is not None] + [
        (p.start, p.end) for s in sections for p in s.paragraphs if p.kind in UNINDEXED_KINDS
    ]


def section_of_each_char(passages) -> dict[int, tuple[str, ...]]:
    return {i: p.section for p in passages for i in range(p.start, p.end)}


# -- properties of the parser and the chunker ------------------------------------------------------
@PROPS
@given(report_text())
@example("\ufeff# 标题\r\n\r\n## 第一部分 甲\r正文没有结束\n\n\n继续。\n")
@example("## 第一部分\n\n### （一）\n\n#\n\n1.1\n")
def test_passages_slice_the_file_exactly_with_independent_line_numbers(text):
    RUNS["passages slice the file; line numbers"] += 1
    doc = document(text)
    lines = reference_lines(text)
    for p in split_passages(doc):
        assert 0 <= p.start < p.end <= len(text)
        assert p.text == doc.text[p.start : p.end]
        assert p.line_start == lines[p.start], (p.start, p.line_start)
        assert p.line_end == lines[p.end - 1], (p.end, p.line_end)
        for s, e in p.sentences:
            assert p.start <= s < e <= p.end


@PROPS
@given(report_text())
def test_passages_are_in_order_and_do_not_overlap(text):
    RUNS["passages ordered, non-overlapping"] += 1
    passages = split_passages(document(text))
    for a, b in zip(passages, passages[1:]):
        assert a.end <= b.start
    assert [p.id for p in passages] == [f"corpus/report.txt#{i}" for i in range(1, len(passages) + 1)]


@PROPS
@given(report_text(), st.sampled_from([ChunkSettings(), ChunkSettings(max_chars=40, min_chars=10), ChunkSettings(max_chars=1000, min_chars=300)]))
@example("标题\n\n正文。", ChunkSettings())
def test_nothing_but_headings_and_whitespace_is_dropped(text, chunk_settings):
    RUNS["no silent drop (only headings/whitespace excluded)"] += 1
    passages = split_passages(document(text), chunk_settings)
    covered = bytearray(len(text))
    for p in passages:
        covered[p.start : p.end] = b"\x01" * (p.end - p.start)
    for s, e in heading_spans(text):
        covered[s:e] = b"\x01" * (e - s)
    dropped = [(i, text[i]) for i in range(len(text)) if not covered[i] and not text[i].isspace()]
    assert dropped == [], f"dropped {dropped[:10]}"


@PROPS
@given(report_text())
def test_parsing_is_deterministic(text):
    RUNS["parsing twice gives the same"] += 1
    doc = document(text)
    assert split_passages(doc) == split_passages(doc)
    a = [(s.title, s.level, s.path, s.heading, s.paragraphs) for s in walk(parse_sections(text))]
    b = [(s.title, s.level, s.path, s.heading, s.paragraphs) for s in walk(parse_sections(text))]
    assert a == b


@PROPS
@given(report_text(min_lines=1), st.sampled_from(["\n\n", "\r\n\r\n", "\r\r"]),
       st.sampled_from(["这是最后追加的一个完整段落，用来检查前面的章节不会改变。", "An appended closing paragraph, with a full stop."]))
def test_appending_a_paragraph_does_not_change_earlier_sections(text, gap, paragraph):
    """Each character keeps its section when a paragraph is added at the end.

    Back-matter passages are exempt by definition: back matter is the matter *after the last
    paragraph of body text*, so text appended after it turns it into body text."""
    RUNS["appending a paragraph keeps earlier sections"] += 1
    before = [p for p in split_passages(document(text)) if p.kind != "back"]
    after = section_of_each_char(split_passages(document(text + gap + paragraph)))
    for p in before:
        for i in range(p.start, p.end):
            if not text[i].isspace():
                assert after.get(i) == p.section, (i, text[i], p.section, after.get(i))


@PROPS
@given(report_text(), st.sampled_from([ChunkSettings(), ChunkSettings(max_chars=40, min_chars=10)]))
def test_no_paragraph_or_passage_contains_a_heading_line(text, chunk_settings):
    """A heading ends the text before it: no paragraph, and no passage cited, runs across one."""
    RUNS["no paragraph or passage spans a heading"] += 1
    sections = list(walk(parse_sections(text)))
    headings = [s.heading for s in sections if s.heading is not None]
    spans = [(p.start, p.end) for s in sections for p in s.paragraphs]
    spans += [(p.start, p.end) for p in split_passages(document(text), chunk_settings)]
    for start, end in spans:
        assert not [h for h in headings if start <= h[0] < end], (start, end, headings)


def test_appending_after_a_top_level_heading_that_follows_body_text_keeps_earlier_sections():
    # Minimal form of an example Hypothesis found: '# 标题' was taken as the file's title, so the
    # root's paragraphs lay on both sides of it and the passage before it, with the short tail
    # folded in, spanned the heading line; the appended paragraph un-folded the tail.
    text = "甲" * 80 + "。\n\n# 标题\n\n" + "乙" * 40 + "。"
    for paragraph in ("这是最后追加的一个完整段落，用来检查前面的章节不会改变。", "An appended closing paragraph, with a full stop."):
        test_appending_a_paragraph_does_not_change_earlier_sections.hypothesis.inner_test(text, "\n\n", paragraph)


def test_appending_after_a_link_line_between_short_paragraphs_keeps_earlier_sections():
    # Minimal form of a second Hypothesis example: the short paragraph after a link list (never
    # indexed) was folded into the passage before the list, so that passage spanned it; the
    # appended paragraph un-folded the tail.
    text = "甲" * 80 + "。\n\nhttp://x.org/a\n\n" + "乙" * 40 + "。"
    passages = split_passages(document(text))
    link = text.index("http")
    assert not [p for p in passages if p.start <= link < p.end]
    for paragraph in ("这是最后追加的一个完整段落，用来检查前面的章节不会改变。", "An appended closing paragraph, with a full stop."):
        test_appending_a_paragraph_does_not_change_earlier_sections.hypothesis.inner_test(text, "\n\n", paragraph)


def test_an_over_long_sentence_cut_at_a_clause_starts_its_next_passage_on_text():
    text = "正文，\n\n" + "很" * 300 + "。\n"  # minimal reproducer found by the properties above
    passages = split_passages(document(text), ChunkSettings(max_chars=300))
    assert [p.text[:1] for p in passages] == ["正", "很"]
    assert [p.line_start for p in passages] == [1, 3]


def test_a_byte_order_mark_does_not_hide_the_title():
    from rag.sections import parse_sections

    assert parse_sections("\ufeff# 标题\n\n## 第一部分 甲\n\n正文。\n").title == "标题"


def test_the_real_report_satisfies_the_same_invariants():
    RUNS["the real report (one input)"] += 1
    text = REPORT.read_bytes().decode("utf-8")
    test_passages_slice_the_file_exactly_with_independent_line_numbers.hypothesis.inner_test(text)
    test_nothing_but_headings_and_whitespace_is_dropped.hypothesis.inner_test(text, ChunkSettings())


# -- question fuzzing ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    return built_hash_assistant(tmp_path_factory.mktemp("fuzz"))


SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)  # lone surrogates (only via the API)
ANY_CHAR = st.one_of(st.characters(), SURROGATE)  # every code point
QUESTION = st.one_of(
    st.text(ANY_CHAR, max_size=300),
    st.text(SURROGATE, min_size=1, max_size=5),
    st.text(st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp", "Mn")), max_size=50),
    st.builds(lambda a, b: a + b, st.text(CJK, max_size=30), st.text(ANY_CHAR, max_size=30)),
    st.builds(lambda s, n: s * n, st.text(ANY_CHAR, min_size=1, max_size=3), st.integers(1000, 50_000)),
    PROSE,
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(question=QUESTION, k=st.one_of(st.integers(1, 60), st.integers(-3, 0), st.sampled_from([True, 2.5, "5", None])),
       mode=st.sampled_from(["hybrid", "dense", "bm25", "", "HYBRID", "magic"]))
@example(question="", k=5, mode="hybrid")
@example(question=" \t\n\u3000\u200b", k=5, mode="hybrid")
@example(question="东" * 100_000, k=5, mode="hybrid")
@example(question="a" * 100_000, k=50, mode="bm25")
@example(question="\ud800\udfff\udc00 ASEAN 东盟 \x00\x1b[31m", k=3, mode="dense")
@example(question="What is IPEF？東盟的中心地位是什麼？ Что такое АСЕАН? 😀", k=5, mode="hybrid")
def test_any_question_gets_results_or_a_rag_error(assistant, question, k, mode):
    RUNS["question fuzzing through Assistant.ask"] += 1
    try:
        answer = assistant.ask(question, k=k, mode=mode)
    except RagError:
        return
    assert isinstance(k, int) and 1 <= k and mode in ("hybrid", "dense", "bm25")
    assert len(answer.hits) <= k
    assert [h.rank for h in answer.hits] == list(range(1, len(answer.hits) + 1))
    for h in answer.hits:
        assert h.passage.text and (h.highlight is None or h.passage.start <= h.highlight[0] < h.highlight[1] <= h.passage.end)
    d = answer.to_dict()
    assert d["question"] == question
