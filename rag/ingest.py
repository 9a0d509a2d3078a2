"""Adding a report to the corpus: PDF and Word files become text with a `.meta.json` beside it.

`add_file("报告.pdf", corpus_dir)` extracts the text layer with pypdf (BSD, pure Python), writes
`<name>.txt` and `<name>.meta.json` (title, source file name and SHA-256, and `page_starts`: the
character offset where each page begins in the written text) into the corpus folder. Pages are
separated by a blank line, so a page break also ends a paragraph. Citations into the text then
carry page numbers (`Passage.pages`, from `DocumentInfo.page_starts`), and their offsets stay
exact offsets into the written `.txt`, which is what the index reads.
`.docx` (python-docx) becomes `<name>.md`, its Heading styles as `#` headings. `.md` and `.txt`
are copied in as they are, after the same checks the corpus makes (UTF-8, not empty).

Only problems a user can cause are reported, each as one ConversionError naming the file and
what to do: a missing file, a type this cannot read, a file that is not what its name says,
an encrypted PDF, a PDF with no text layer (scanned), a damaged file, a name already in the corpus.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import decode
from .errors import ConversionError, CorpusError

SUFFIXES = (".pdf", ".docx", ".md", ".txt")
#: Fewer visible characters than this per page on average: the PDF has no usable text layer.
MIN_CHARS_PER_PAGE = 5
_SPACES_AT_END = re.compile(r"[ \t\u3000]+(?=\n)")
_BLANK_RUN = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Extracted:
    """Text taken out of a document, and where each of its pages starts in that text."""

    text: str
    title: str = ""
    page_starts: tuple[int, ...] = ()
    converter: str = ""


@dataclass(frozen=True)
class Added:
    """What `add_file` wrote into the corpus."""

    text_path: Path
    meta_path: Path
    title: str
    pages: int
    chars: int
    meta: dict = field(default_factory=dict)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tidy(page: str) -> str:
    """A page's text without NULs, trailing spaces and runs of blank lines, ending in no newline."""
    page = page.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    page = _SPACES_AT_END.sub("", page)
    return _BLANK_RUN.sub("\n\n", page).strip("\n")


#: Titles PDF producers fill in by themselves, which name no report.
_JUNK_TITLE = re.compile(r"^(?:untitled|anonymous|unknown|microsoft (?:word|powerpoint) - .*|.*\.(?:docx?|pdf|pptx?|txt|md))$", re.I)


def _title_of_text(text: str) -> str:
    """A Markdown file's own title: its header's title field, its first `#` heading, or its first line."""
    from .markup import front_matter

    header = front_matter(text)
    if header is not None and header.title:
        return header.title
    m = re.search(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", text, re.M)
    return m.group(1).strip() if m else _first_line(text)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 80 else line[:80] + "…"
    return ""


def extract_pdf(path: Path) -> Extracted:
    """The text layer of a PDF, page by page."""
    try:
        import pypdf
        from pypdf.errors import PdfReadError
    except ImportError:
        raise ConversionError("reading PDF files needs pypdf: pip install pypdf") from None
    with open(path, "rb") as fh:
        if not fh.read(1024).lstrip().startswith(b"%PDF-"):
            raise ConversionError(f"{path} is not a PDF file (it does not start with %PDF-)")
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # an owner password alone still lets anyone read the text
            except Exception:  # pypdf needs the cryptography package for AES; either way it stays locked
                opened = 0
            if not opened:
                raise ConversionError(f"{path} is encrypted with a password; save an unlocked copy and add that")
        pages = [_tidy(page.extract_text() or "") for page in reader.pages]
        title = ""
        try:
            meta = reader.metadata
            title = str(meta.title or "").strip() if meta else ""
            title = "" if _JUNK_TITLE.match(title) else title
        except Exception:  # damaged metadata: keep the text, lose the title
            title = ""
    except ConversionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ConversionError(f"{path} cannot be read as a PDF ({type(exc).__name__}: {exc})") from None
    if not pages:
        raise ConversionError(f"{path} has no pages")
    visible = sum(len("".join(p.split())) for p in pages)
    if visible < MIN_CHARS_PER_PAGE * len(pages):
        raise ConversionError(
            f"{path} has no text layer (a scanned or image-only PDF?); run OCR first (e.g. ocrmypdf) and add the result"
        )
    starts: list[int] = []
    parts: list[str] = []
    pos = 0
    for page in pages:
        if parts:
            parts.append("\n\n")
            pos += 2
        starts.append(pos)
        parts.append(page)
        pos += len(page)
    text = "".join(parts) + "\n"
    return Extracted(text=text, title=title or _first_line(text), page_starts=tuple(starts), converter=f"pypdf {pypdf.__version__}")


def extract_docx(path: Path) -> Extracted:
    """A Word file's paragraphs as Markdown: Heading 1-6 styles become `#` headings."""
    try:
        import docx
    except ImportError:
        raise ConversionError("reading .docx files needs python-docx: pip install python-docx (or the project's 'docx' extra)") from None
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ConversionError(f"{path} is not a .docx file (it is not a zip archive)")
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several kinds for a damaged package
        raise ConversionError(f"{path} cannot be read as a .docx file ({type(exc).__name__}: {exc})") from None
    blocks: list[str] = []
    for para in document.paragraphs:
        text = " ".join(para.text.split("\n")).strip()
        if not text:
            continue
        style = (para.style.name if para.style is not None else "") or ""
        m = re.fullmatch(r"Heading ([1-6])", style)
        if m:
            text = "#" * int(m.group(1)) + " " + text
        elif style == "Title":
            text = "# " + text
        blocks.append(text)
    if not blocks:
        raise ConversionError(f"{path} holds no text")
    text = "\n\n".join(blocks) + "\n"
    title = (document.core_properties.title or "").strip()
    return Extracted(text=text, title=title or _title_of_text(text), converter="python-docx")


def extract_text_file(path: Path) -> Extracted:
    """A Markdown or text file as it is, if the corpus could read it."""
    try:
        text = decode(path, path.read_bytes())
    except CorpusError as exc:
        raise ConversionError(str(exc).replace("corpus file ", "", 1)) from None
    return Extracted(text=text, title=_title_of_text(text))


def extract(path: Path) -> Extracted:
    """The text of a PDF, .docx, .md or .txt file."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return extract_pdf(path)
    if suffix == ".docx":
        return extract_docx(path)
    if suffix in (".md", ".txt"):
        return extract_text_file(path)
    raise ConversionError(f"{path.name}: cannot add {suffix or 'files without a suffix'}; rag add takes {', '.join(SUFFIXES)}")


def _write_atomic(path: Path, data: bytes) -> None:
    from . import atomic

    atomic.write_bytes(path, data)


def add_file(path: Path | str, corpus_dir: Path | str, *, name: str | None = None, overwrite: bool = False) -> Added:
    """Convert `path` and write `<name>.txt|.md` and `<name>.meta.json` into `corpus_dir`.

    `name` defaults to the file's own stem. An existing file of that name is replaced only with
    `overwrite=True`. The text is written first and the metadata last, each atomically.
    """
    path = Path(path)
    corpus_dir = Path(corpus_dir)
    if not path.is_file():
        raise ConversionError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    if path.suffix.lower() not in SUFFIXES:
        raise ConversionError(f"{path.name}: cannot add {path.suffix or 'files without a suffix'}; rag add takes {', '.join(SUFFIXES)}")
    stem = (name or path.stem).strip()
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        raise ConversionError(f"{stem!r} cannot be a corpus file name")
    out_suffix = {".pdf": ".txt", ".docx": ".md"}.get(path.suffix.lower(), path.suffix.lower())
    text_path = corpus_dir / f"{stem}{out_suffix}"
    meta_path = corpus_dir / f"{stem}.meta.json"
    if not overwrite:
        clashes = [p for p in (text_path, meta_path, *(corpus_dir / f"{stem}{s}" for s in (".md", ".txt"))) if p.exists()]
        if clashes:
            raise ConversionError(f"{clashes[0]} already exists; choose another name or replace it (rag add --force)")
    if path.resolve() == text_path.resolve():
        raise ConversionError(f"{path} is already in the corpus")
    data = path.read_bytes()
    extracted = extract(path)
    body = extracted.text.encode("utf-8")
    meta = {
        "title": extracted.title or stem,
        "source_file": path.name,
        "source_sha256": _sha256(data),
        "text_sha256": _sha256(body),
    }
    if extracted.page_starts:
        meta["pages"] = len(extracted.page_starts)
        meta["page_starts"] = list(extracted.page_starts)
    if extracted.converter:
        meta["converter"] = extracted.converter
    try:
        corpus_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:  # a stale sibling (report.md beside a new report.txt) would be indexed twice
            for s in (".md", ".txt"):
                other = corpus_dir / f"{stem}{s}"
                if other != text_path and other.exists():
                    other.unlink()
        _write_atomic(text_path, body)
        _write_atomic(meta_path, (json.dumps(meta, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    except OSError as exc:
        raise ConversionError(f"cannot write into {corpus_dir}: {exc.strerror or exc}") from None
    return Added(text_path, meta_path, meta["title"], len(extracted.page_starts), len(extracted.text), meta)
