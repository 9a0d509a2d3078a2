"""rag.web.outline: the section tree the page's report map draws."""

from __future__ import annotations

from rag.web.outline import outline


def _walk(node):
    yield node
    for c in node.children:
        yield from _walk(c)


def test_the_report_has_its_opening_four_parts_eight_areas_and_forty_recommendations(hash_assistant):
    passages = hash_assistant.passages()
    tree = outline(passages, passages[0].source)
    assert tree.path == ("亚太命运共同体展望",) and tree.passages == len(passages)
    parts = [c for c in tree.children if c.title.startswith("第")]
    assert [p.title[:4] for p in parts] == ["第一部分", "第二部分", "第三部分", "第四部分"]
    areas = parts[3].children
    assert len(areas) == 8
    assert sum(len(a.children) for a in areas) == 40
    # Opening text: the report's own passages come before the first part.
    assert any(p.section == tree.path and p.end <= parts[0].start for p in passages)
    for node in _walk(tree):  # children in reading order, inside their parent
        starts = [c.start for c in node.children]
        assert starts == sorted(starts)
        assert all(node.start <= c.start and c.end <= node.end for c in node.children)


def test_an_unknown_source_has_an_empty_tree(hash_assistant):
    tree = outline(hash_assistant.passages(), "corpus/none.txt")
    assert tree.children == [] and tree.passages == 0
