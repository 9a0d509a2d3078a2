"""Link targets, citation markers, reference-list lines and headers, as a reader would judge them."""

from rag.markup import front_matter, hidden_spans, is_link_dump, is_link_line, strip_hidden

URL1 = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AUZIYQGMfIm1bXH?x=1;y=2"
URL2 = "https://example.org/a_(b)"


def test_citation_markers_and_targets_are_hidden_but_words_of_a_link_stay():
    text = f"经济增长5%左右 [sina]({URL1}) [163]({URL2})。详见[国家统计局公报]({URL2})。"
    assert strip_hidden(text) == "经济增长5%左右。详见国家统计局公报。"
    for s, e in hidden_spans(text):  # spans of the original text, in order, not overlapping
        assert 0 <= s < e <= len(text)
    spans = hidden_spans(text)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_text_without_web_links_is_left_alone():
    text = "联系 [ciss@tsinghua.edu.cn](mailto:ciss@tsinghua.edu.cn) 或 <http://ciss.tsinghua.edu.cn>。"
    assert strip_hidden(text) == text and hidden_spans(text) == []


def test_reference_entries_are_link_lines():
    assert is_link_line(f"*   [china]({URL1})")
    assert is_link_line(f"*   [地方政府新闻]({URL2}): 地方政府联合倡议报道. 2023年。")
    assert is_link_line("*   Reuters, July 8, 2025 [Source: www.reuters.com/markets/asia/x-2025-07-08/]")
    assert is_link_line(f"*   [Source A: Xinhua] 2025年8月15日. *铭记历史，珍爱和平*. [{URL2}]({URL2})")


def test_sentences_that_cite_a_source_are_not_link_lines():
    assert not is_link_line(f"- 国际机构普遍看好2025年中国经济增长，预计增速可达5%左右 [china]({URL1}) [sina]({URL2})")
    assert not is_link_line(f"- 新华社报道称，东盟在地区合作中发挥中心作用，各方支持其共同体建设 [xinhua]({URL1})。")
    assert not is_link_line("东盟是地区合作的中心。")


def test_a_list_of_links_is_a_dump_a_paragraph_with_citations_is_not():
    dump = "\n".join(f"*   [site{i}]({URL1}{i})" for i in range(8))
    assert is_link_dump(dump)
    prose = "\n".join(f"- 第{i}项措施已经落实，效果明显 [site]({URL1})。" for i in range(5))
    assert not is_link_dump(prose)


def test_front_matter_fields_and_span():
    text = "版次: 头版（v1）\n日期: 2025-12-20\n主题: 存款去哪了？央行数据揭秘\n\n来源: https://www.baidu.com/s?wd=x&y=1\n\n# 标题\n正文。\n"
    fm = front_matter(text)
    assert fm is not None and fm.title == "存款去哪了？央行数据揭秘" and fm.date == "2025-12-20"
    assert text[fm.start : fm.end].endswith("y=1") and fm.start == 0


def test_a_sentence_with_a_colon_is_no_header():
    assert front_matter("注意：本报告仅供参考。\n说明：数据来自公开渠道。\n\n正文。") is None
    assert front_matter("# 标题\n\n日期: 2025\n主题: x\n") is None


def test_visible_length_counts_what_a_reader_reads():
    from rag.markup import visible_length

    text = f"经济增长5%左右 [sina]({URL1})。详见[国家统计局公报]({URL2})。"
    assert visible_length(text) == len(strip_hidden(text)) == len("经济增长5%左右。详见国家统计局公报。")
    assert visible_length("没有链接的句子。") == len("没有链接的句子。")
