"""Reading the corpus: every `*.md` / `*.txt` file under the corpus folder, decoded once, hashed.

What is known about a file besides its text comes from its sidecar `<name>.meta.json` (written by
hand, or by `rag add` for a converted PDF, with the offsets where its pages start) and, for a
Markdown file, from the `key: value` header it opens with (its title and date).
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusError

#: Files larger than this are refused: the tool is meant for reports, not dumps.
MAX_FILE_BYTES = 50 * 1024 * 1024
SUFFIXES = (".md", ".txt")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class DocumentInfo:
    """What a citation can show about a report besides its file name."""

    title_zh: str = ""
    title_en: str = ""
    publisher: str = ""
    year: str = ""
    #: The report's title in its own language: `title` of the sidecar, else title_zh or
    #: title_en, else the title or 主题 field of the file's header.
    title: str = ""
    date: str = ""
    #: For a converted file: the file it came from, that file's SHA-256, and the character
    #: offset in this text where each of its pages starts (page 1 first).
    source_file: str = ""
    source_sha256: str = ""
    page_starts: tuple[int, ...] = ()

    def page_of(self, offset: int) -> int | None:
        """1-based page holding the character at `offset`, or None when the file has no pages."""
        if not self.page_starts:
            return None
        return max(1, bisect_right(self.page_starts, offset))


@dataclass(frozen=True)
class Document:
    """One corpus file, decoded as UTF-8 with its line endings untranslated."""

    path: Path
    source: str  # path relative to the project root (or the corpus folder's parent)
    text: str
    sha256: str
    info: DocumentInfo = field(default_factory=DocumentInfo)
    line_starts: tuple[int, ...] = ()

    def line_of(self, offset: int) -> int:
        """1-based line holding the character at `offset` (\\n, \\r\\n and lone \\r end lines)."""
        return bisect_right(self.line_starts, offset)


def compute_line_starts(text: str) -> tuple[int, ...]:
    return (0, *(m.end() for m in _LINE_BREAK.finditer(text)))


def decode(path: Path, data: bytes) -> str:
    """Decode a corpus file strictly; errors name the file and say what is wrong."""
    if not data.strip():
        raise CorpusError(f"corpus file {path} is empty")
    if b"\x00" in data:
        raise CorpusError(f"corpus file {path} looks binary (it contains NUL bytes); only UTF-8 text is indexed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(
            f"corpus file {path} is not valid UTF-8 (byte {exc.start}, line {line}); convert it to UTF-8"
        ) from None


def read_info(path: Path, text: str = "") -> DocumentInfo:
    """Metadata from the sidecar `<name>.meta.json`, if the corpus has one, and the text's own header."""
    from .markup import front_matter

    meta = path.with_name(path.stem + ".meta.json")
    raw: dict = {}
    if meta.is_file():
        try:
            raw = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorpusError(f"metadata file {meta} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise CorpusError(f"metadata file {meta} must hold a JSON object")
    strings = {k: str(raw.get(k) or "") for k in DocumentInfo.__dataclass_fields__ if k != "page_starts"}
    starts = raw.get("page_starts") or []
    if not isinstance(starts, list) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in starts):
        raise CorpusError(f"metadata file {meta}: page_starts must be a list of character offsets")
    if list(starts) != sorted(starts) or (text and starts and starts[-1] > len(text)):
        raise CorpusError(f"metadata file {meta}: page_starts must rise and stay within the text; convert the file again")
    header = front_matter(text) if text else None
    strings["title"] = strings["title"] or strings["title_zh"] or strings["title_en"] or (header.title if header else "")
    strings["date"] = strings["date"] or (header.date if header else "")
    return DocumentInfo(**strings, page_starts=tuple(starts))


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The files that are indexed, in a stable order."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist (set --corpus or RAG_CORPUS_DIR)")
    files = sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise CorpusError(f"corpus folder {corpus_dir} holds no .md or .txt files")
    return files


def source_name(path: Path, corpus_dir: Path) -> str:
    """How citations name a file: relative to the corpus folder's parent, e.g. `corpus/report.txt`."""
    return path.absolute().relative_to(corpus_dir.absolute().parent).as_posix()


def load_document(path: Path, corpus_dir: Path) -> Document:
    root = corpus_dir.resolve()
    if path.is_symlink() and not path.resolve().is_relative_to(root):
        raise CorpusError(f"corpus file {path} is a link to {path.resolve()}, outside the corpus folder; copy the file in instead")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CorpusError(f"corpus file {path} is too large ({size} bytes; limit {MAX_FILE_BYTES})")
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read corpus file {path}: {exc.strerror or exc}") from None
    text = decode(path, data)
    return Document(
        path=path,
        source=source_name(path, corpus_dir),
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        info=read_info(path, text),
        line_starts=compute_line_starts(text),
    )


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Every indexed file of the corpus, decoded and hashed."""
    return [load_document(p, corpus_dir) for p in corpus_files(corpus_dir)]
