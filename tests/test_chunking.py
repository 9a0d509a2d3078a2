from pathlib import Path

from rag.chunking import ChunkSettings, clean_text, indexed_text, sentence_spans, split_passages
from rag.corpus import load_document

from .conftest import REPORT


def lines_of(text: str, offset: int) -> int:
    """Reference line numbering, written independently of rag.corpus: \\r\\n, \\r and \\n end lines."""
    return text[:offset].replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1


def report_passages(settings=ChunkSettings()):
    doc = load_document(REPORT, REPORT.parent)
    return doc, split_passages(doc, settings)


def test_every_passage_slices_the_file_exactly_with_agreeing_lines():
    doc, passages = report_passages()
    raw = REPORT.read_bytes().decode("utf-8")
    assert len(passages) > 100
    for p in passages:
        assert raw[p.start : p.end] == p.text
        assert p.line_start == lines_of(raw, p.start)
        assert p.line_end == lines_of(raw, p.end - 1)
        assert p.source == "corpus/ciss-2022-asia-pacific-community-outlook.txt"
        for s, e in p.sentences:
            assert p.start <= s < e <= p.end


def test_each_recommendation_is_one_passage():
    _, passages = report_passages()
    recs = [p for p in passages if p.kind == "recommendation"]
    assert len(recs) == 40
    for p in recs:
        assert p.text.startswith(p.section[-1].split(" ")[0] + " ")
    # 2.3 is cut by a page break; its passage runs across it.
    rec23 = next(p for p in recs if p.section[-1].startswith("2.3"))
    assert "商签" in rec23.text and "高标准双边自贸协定" in rec23.text


def test_passages_are_short_enough_to_cite_and_cover_the_body():
    _, passages = report_passages()
    prose = [p for p in passages if p.kind == "prose"]
    assert max(len(clean_text(p.text)) for p in prose) <= ChunkSettings().max_chars * 1.4
    text = REPORT.read_text(encoding="utf-8")
    # Every sentence-ending character of the body belongs to some passage: nothing is dropped.
    covered = set()
    for p in passages:
        covered.update(range(p.start, p.end))
    body_start = text.index("党的第二十次")
    missing = [i for i, c in enumerate(text) if i > body_start and c == "。" and i not in covered]
    assert missing == []


def test_passages_do_not_overlap_and_are_in_order():
    _, passages = report_passages()
    for a, b in zip(passages, passages[1:]):
        assert a.end <= b.start


def test_contact_lines_are_one_back_matter_passage():
    _, passages = report_passages()
    back = [p for p in passages if p.kind == "back"]
    assert len(back) == 1 and "010-62771388" in back[0].text
    assert not any("010-62771388" in p.text for p in passages if p.kind != "back")


def test_sentences_end_at_chinese_sentence_marks():
    text = "第一句。第二句！第三句？“第四句。”第五句；"
    spans = sentence_spans(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == ["第一句。", "第二句！", "第三句？", "“第四句。”", "第五句；"]


def test_indexed_text_joins_page_breaks_and_adds_the_section_path():
    _, passages = report_passages()
    p = next(p for p in passages if "\n\n" in p.text and p.kind == "prose")
    text = indexed_text(p, ChunkSettings(section_in_text=True))
    assert "\n\n" not in text
    assert text.startswith(" > ".join(p.section))
    assert "\n" not in indexed_text(p, ChunkSettings(section_in_text=False))


def test_crlf_and_lone_cr_files_keep_exact_offsets(tmp_path: Path):
    for eol in ("\r\n", "\r"):
        raw = eol.join(["# 标题", "", "## 第一部分 甲", "", "第一段很长的句子。第二句话在这里。", "", "第二段。"]) + eol
        f = tmp_path / f"r{len(eol)}.txt"
        f.write_bytes(raw.encode("utf-8"))
        doc = load_document(f, tmp_path)
        for p in split_passages(doc):
            assert raw[p.start : p.end] == p.text
            assert p.line_start == lines_of(raw, p.start) and p.line_end == lines_of(raw, p.end - 1)


def library_style_doc(tmp_path):
    """A web-sourced Markdown report: header, cited bullets (long redirect URLs), a reference list."""
    url = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ{}?q=a;b!c:d," + "x" * 180
    bullets = "\n".join(
        f"- 第{i}项：该项措施推动了区域合作，成效显著，各方普遍认可其作用 [site{i}]({url.format(i)}) [news]({url.format(i + 100)})。"
        for i in range(12)
    )
    refs = "\n".join(f"*   [site{i}]({url.format(i)})" for i in range(12))
    text = (
        "版次: 头版（v1）\n日期: 2025-12-20\n主题: 区域合作\n\n来源: https://www.baidu.com/s?wd=x\n\n"
        f"# 区域合作\n\n## 摘要\n{bullets}\n\n## 数据与引用\n{refs}\n"
    )
    path = tmp_path / "corpus" / "report.md"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return load_document(path, path.parent), text


def test_header_and_reference_list_become_no_passage(tmp_path):
    doc, text = library_style_doc(tmp_path)
    passages = split_passages(doc)
    assert passages and all(p.section[:2] == ("区域合作", "摘要") for p in passages)
    assert not any("版次" in p.text or "*   [site" in p.text for p in passages)


def test_links_stay_whole_and_out_of_what_is_indexed(tmp_path):
    doc, text = library_style_doc(tmp_path)
    settings = ChunkSettings()
    for p in split_passages(doc, settings):
        assert text[p.start : p.end] == p.text  # citations still slice the original file
        assert p.text.startswith("- 第") and p.text.endswith("。")  # never cut inside a URL
        for s, e in p.sentences:
            assert text[s:e].startswith("- 第") and text[s:e].endswith("。")
        body = indexed_text(p, settings)
        assert "http" not in body and "site" not in body and "news" not in body
        assert len(body) <= settings.max_chars  # length counts words, not URLs
    # Twelve ~60-character bullets pack into a few passages, not one passage per URL-heavy bullet.
    assert len(split_passages(doc, settings)) <= 3


def test_page_numbers_follow_the_page_offsets_of_a_converted_file(tmp_path):
    import json

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pages = ["第一页的内容是关于合作的讨论，这里有足够长的文字构成一个段落，讨论东盟。", "第二页的内容讨论数字经济，也有足够长的文字构成一个段落，讨论数据。"]
    text = pages[0] + "\n\n" + pages[1] + "\n"
    (corpus / "r.txt").write_text(text, encoding="utf-8")
    (corpus / "r.meta.json").write_text(json.dumps({"title": "R", "page_starts": [0, len(pages[0]) + 2]}), encoding="utf-8")
    doc = load_document(corpus / "r.txt", corpus)
    got = [(p.text, p.pages) for p in split_passages(doc, ChunkSettings(min_chars=10))]
    assert got == [(pages[0], (1, 1)), (pages[1], (2, 2))]
    merged = split_passages(doc, ChunkSettings(min_chars=200))
    assert [p.pages for p in merged] == [(1, 2)]


def test_a_file_without_pages_has_no_page_numbers():
    _, passages = report_passages()
    assert all(p.pages is None for p in passages)
