"""Ask the CISS 2022 report: cited passages for questions in Chinese or English.

`from rag import Assistant; Assistant().ask("…", k=5)`. Heavy modules load lazily.
"""

from __future__ import annotations

__all__ = ["Assistant", "Answer", "Hit", "Passage", "RagError"]


def __getattr__(name: str):
    if name in ("Assistant", "Answer"):
        from . import assistant

        return getattr(assistant, name)
    if name == "Hit":
        from .retrieve import Hit

        return Hit
    if name == "Passage":
        from .chunking import Passage

        return Passage
    if name == "RagError":
        from .errors import RagError

        return RagError
    raise AttributeError(name)
