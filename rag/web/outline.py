"""A document's section tree, laid out along the document, for the page's report map.

Built from the index's passages (their section paths and character offsets), so the map shows
exactly the structure answers are cited from: each section spans from the start of its first
passage to the end of its last one; a section's own text before its first subsection (a part's
opening paragraphs) is the stretch of its bar no child covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..chunking import Passage


@dataclass
class OutlineNode:
    """One node of the tree: its path, where it sits in the document, its subsections in order."""

    path: tuple[str, ...]
    start: int
    end: int
    passages: int = 0
    children: list["OutlineNode"] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.path[-1] if self.path else ""

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "path": list(self.path),
            "start": self.start,
            "end": self.end,
            "passages": self.passages,
            "children": [c.to_dict() for c in self.children],
        }


def outline(passages: list[Passage], source: str) -> OutlineNode:
    """The section tree of one document (`source`), root first; sections in reading order.

    A title section holding the whole document (every path starts with it) is the root itself.
    """
    mine = sorted((p for p in passages if p.source == source), key=lambda p: p.start)
    if not mine:
        return OutlineNode((), 0, 0)
    root = OutlineNode((), mine[0].start, mine[-1].end)
    nodes: dict[tuple[str, ...], OutlineNode] = {(): root}
    for p in mine:
        root.passages += 1
        for depth in range(1, len(p.section) + 1):
            path = tuple(p.section[:depth])
            node = nodes.get(path)
            if node is None:
                node = nodes[path] = OutlineNode(path, p.start, p.end)
                nodes[path[:-1]].children.append(node)
            node.start, node.end = min(node.start, p.start), max(node.end, p.end)
            node.passages += 1
    while len(root.children) == 1 and root.children[0].passages == root.passages:
        root = root.children[0]
    return root
