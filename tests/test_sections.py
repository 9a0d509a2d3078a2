from rag.sections import AREA, PART, RECOMMENDATION, is_complete, parse_sections, walk

from .conftest import REPORT


def tree():
    return parse_sections(REPORT.read_text(encoding="utf-8"))


def test_report_has_title_four_parts_eight_areas_forty_recommendations():
    root = tree()
    assert root.title == "亚太命运共同体展望"
    sections = list(walk(root))
    parts = [s for s in sections if s.level == PART and s.title.startswith("第")]
    areas = [s for s in sections if s.level == AREA]
    recs = [s for s in sections if s.level == RECOMMENDATION]
    assert [p.title[:4] for p in parts] == ["第一部分", "第二部分", "第三部分", "第四部分"]
    assert [a.title for a in areas] == [
        "（一）政治", "（二）经济", "（三）金融", "（四）连通", "（五）科技", "（六）安全", "(七) 应对全球性挑战", "(八) 民心相通",
    ]
    assert len(recs) == 40
    assert recs[0].title.startswith("1.1 ") and recs[-1].title.startswith("8.4 ")
    assert all(r.path[:2] == ("亚太命运共同体展望", "第四部分 中国的战略选择和亚太愿景") for r in recs)


def test_inconsistent_heading_marks_give_the_same_levels():
    # '### 第三部分' is a part like '## 第一部分'; '### （三）金融' an area like '## （一）政治'.
    text = "# T\n\n## 第一部分 甲\n\n正文。\n\n### 第二部分 乙\n\n正文。\n\n### （三）金融\n\n3.1 建议一。\n\n## **(七) 挑战**\n\n7.1 建议二。\n"
    root = parse_sections(text)
    levels = [(s.title, s.level) for s in walk(root)][1:]
    assert levels == [("第一部分 甲", 1), ("第二部分 乙", 1), ("（三）金融", 2), ("3.1 建议一", 3), ("(七) 挑战", 2), ("7.1 建议二", 3)]


def test_page_break_continuation_is_one_paragraph():
    text = "# T\n\n## 第一部分 甲\n\n这一段在页尾被截断，没有\n\n\n\n结束，直到这里。\n\n下一段。\n"
    part = parse_sections(text).children[0]
    spans = [text[p.start : p.end] for p in part.paragraphs]
    assert spans == ["这一段在页尾被截断，没有\n\n\n\n结束，直到这里。", "下一段。"]


def test_a_number_that_continues_a_cut_sentence_is_not_a_recommendation():
    # In the report, '103.3 亿美元' continues a sentence cut by a page break.
    text = "# T\n\n## 第一部分 甲\n\n### （一）乙\n\n1.1 建议，金额为\n\n103.3 亿美元。\n"
    recs = [s for s in walk(parse_sections(text)) if s.level == RECOMMENDATION]
    assert [r.title for r in recs] == ["1.1 建议"]


def test_cover_and_back_matter_are_kept_apart_from_the_body():
    root = tree()
    assert root.paragraphs[0].kind == "cover"
    back = root.children[-1]
    assert back.title.startswith("封底") and [p.kind for p in back.paragraphs] == ["back"]
    text = REPORT.read_text(encoding="utf-8")
    assert "ciss@tsinghua.edu.cn" in text[back.paragraphs[0].start : back.paragraphs[0].end]


def test_sentence_end_detection():
    assert is_complete("结束了。") and is_complete("他说：“好。”") and is_complete("Done.")
    assert not is_complete("一个“化整为零”") and not is_complete("在 2025")


URL = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQ"
LIBRARY_STYLE = (
    "版次: 头版（v1）\n日期: 2025-12-20\n主题: 经济展望\n\n来源: https://www.baidu.com/s?wd=x\n\n"
    "# 经济展望\n\n## 摘要\n- 增长预计达到5%左右 [china](" + URL + "1)。\n- 内需仍然不足 [sina](" + URL + "2)。\n\n"
    "## 深度分析\n### 1. 宏观政策\n财政政策更加积极 [kpmg](" + URL + "3)。\n#### 1.1 专项债\n专项债额度增加。\n\n"
    "## 结论与建议\n**结论：**\n经济韧性较强。\n\n**建议：**\n- 扩大内需。\n\n"
    "## 数据与引用\n*   [china](" + URL + "1)\n*   [sina](" + URL + "2)\n*   [kpmg](" + URL + "3)\n"
)


def test_any_markdown_file_gets_the_tree_of_its_own_headings():
    root = parse_sections(LIBRARY_STYLE)
    assert root.title == "经济展望"
    paths = [s.path for s in walk(root)][1:]
    assert paths == [
        ("经济展望", "摘要"),
        ("经济展望", "深度分析"),
        ("经济展望", "深度分析", "1. 宏观政策"),
        ("经济展望", "深度分析", "1. 宏观政策", "1.1 专项债"),
        ("经济展望", "结论与建议"),
        ("经济展望", "结论与建议", "结论"),  # bold lines head subsections, as siblings
        ("经济展望", "结论与建议", "建议"),
        ("经济展望", "数据与引用"),
    ]


def test_header_and_reference_list_are_marked_not_prose():
    root = parse_sections(LIBRARY_STYLE)
    kinds = {(s.title, p.kind, LIBRARY_STYLE[p.start : p.end].split("\n")[0][:6]) for s in walk(root) for p in s.paragraphs}
    assert ("经济展望", "front", "版次: 头版") in kinds
    refs = next(s for s in walk(root) if s.title == "数据与引用")
    assert [p.kind for p in refs.paragraphs] == ["links"]
    summary = next(s for s in walk(root) if s.title == "摘要")
    assert [p.kind for p in summary.paragraphs] == ["prose"]  # a list with citations is text


def test_headings_need_no_blank_lines_and_code_fences_hide_hashes():
    text = "# 标题\n正文一。\n## 第二节\n正文二。\n```\n# 不是标题\n```\n"
    root = parse_sections(text)
    assert [s.title for s in walk(root)] == ["标题", "第二节"]
    sec = root.children[0]
    assert [text[p.start : p.end] for p in sec.paragraphs] == ["正文二。", "```\n# 不是标题\n```"]


def test_a_part_word_in_a_paragraph_does_not_make_a_markdown_file_ranked():
    text = "# 标题\n\n## 背景\n\n第一章讲述了历史\n\n1.1 亿元投入后，情况改善。\n"
    root = parse_sections(text)
    assert [s.path for s in walk(root)][1:] == [("标题", "背景")]
    assert all(p.kind == "prose" for p in root.children[0].paragraphs)


def test_several_top_level_headings_are_sections_not_a_title():
    root = parse_sections("# 甲\n文字。\n# 乙\n文字。\n")
    assert root.title == "" and [s.path for s in walk(root)][1:] == [("甲",), ("乙",)]


def test_a_header_title_heads_the_tree_when_no_heading_does():
    root = parse_sections("标题: 区域合作\n日期: 2025-01-01\n\n## 背景\n正文。\n")
    assert root.title == "区域合作" and [s.path for s in walk(root)][1:] == [("区域合作", "背景")]


def test_a_top_level_heading_after_body_text_is_a_section_not_the_title():
    # Taken as the title, '# 标题' left the root's paragraphs on both sides of it, and the chunker
    # packed them into one passage spanning the heading line (found by the appending property).
    text = "甲" * 80 + "。\n\n# 标题\n\n" + "乙" * 40 + "。"
    root = parse_sections(text)
    assert root.title == "" and [s.path for s in walk(root)][1:] == [("标题",)]
    assert [text[p.start : p.end][0] for p in root.paragraphs] == ["甲"]
    assert [text[p.start : p.end][0] for p in root.children[0].paragraphs] == ["乙"]


def test_a_top_level_heading_after_only_a_header_is_still_the_title():
    root = parse_sections("\n版次: v1\n日期: 2025-01-01\n\n\n# 标题\n\n正文。\n")
    assert root.title == "标题" and root.children == []


def test_cover_lines_on_both_sides_of_the_title_are_two_paragraphs():
    text = "清华大学\n\n# 标题\n\n2022年12月\n\n## 第一部分 甲\n\n正文。\n"
    root = parse_sections(text)
    assert root.title == "标题"
    assert [(text[p.start : p.end], p.kind) for p in root.paragraphs] == [("清华大学", "cover"), ("2022年12月", "cover")]


def test_no_paragraph_of_the_real_report_contains_a_heading():
    sections = list(walk(tree()))
    headings = [s.heading for s in sections if s.heading is not None]
    for s in sections:
        for p in s.paragraphs:
            assert not any(p.start <= a < p.end for a, _ in headings), (s.path, p)
