"""Reading the corpus: every `*.md` / `*.txt` file under the corpus folder, decoded once, hashed."""

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


def read_info(path: Path) -> DocumentInfo:
    """Metadata from the sidecar `<name>.meta.json`, if the corpus has one."""
    meta = path.with_name(path.stem + ".meta.json")
    if not meta.is_file():
        return DocumentInfo()
    try:
        raw = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"metadata file {meta} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise CorpusError(f"metadata file {meta} must hold a JSON object")
    return DocumentInfo(**{k: str(raw.get(k, "")) for k in DocumentInfo.__dataclass_fields__})


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
        info=read_info(path),
        line_starts=compute_line_starts(text),
    )


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Every indexed file of the corpus, decoded and hashed."""
    return [load_document(p, corpus_dir) for p in corpus_files(corpus_dir)]
