"""The `rag` command: parses arguments, calls the library, formats the output. Nothing else."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from . import config
from .errors import EmptyQuestionError, InvalidArgumentError, RagError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Ask the CISS 2022 report 《亚太命运共同体展望》 in Chinese or English; get cited passages.",
)

CorpusOpt = typer.Option(None, "--corpus", help="Corpus folder (env RAG_CORPUS_DIR; default: the project's corpus/).")
IndexOpt = typer.Option(None, "--index-dir", help="Index folder (env RAG_INDEX_DIR; default: the project's indexes/).")
DocOpt = typer.Option(
    None, "--doc", help="Ask only this document: a file name, a glob or a title (repeatable); see: rag docs."
)
ModelOpt = typer.Option(
    None, "--model", help=f"sentence-transformers model name or path (env RAG_MODEL; default: {config.DEFAULT_MODEL})."
)
StoreOpt = typer.Option(
    None, "--store", help="Where the index lives: faiss (local disk) or milvus (at RAG_MILVUS_URI); env RAG_STORE, default: faiss."
)


def _assistant(corpus: Optional[Path], index_dir: Optional[Path], model: Optional[str], store: Optional[str] = None, **kw):
    from .assistant import Assistant

    return Assistant(corpus_dir=corpus, index_dir=index_dir, model=model, store=store, **kw)


def _highlighted(hit, color: bool) -> str:
    """The passage as a reader sees it (`rag.cite.folded`: link targets and citation markers
    folded), with the best sentence bold (a terminal) or in 【…】."""
    from .cite import folded

    p = hit.passage
    hs, he = hit.highlight or (p.end, p.end)
    runs: list[tuple[bool, str]] = []  # (inside the highlight, shown text)
    for piece in folded(p.text, p.start):
        if piece.kind == "fold":
            parts = [(hs <= piece.start and piece.end <= he, piece.shown)]
        else:
            cuts = sorted({piece.start, piece.end, *(x for x in (hs, he) if piece.start < x < piece.end)})
            parts = [(hs <= a and b <= he, p.text[a - p.start : b - p.start]) for a, b in zip(cuts, cuts[1:])]
        for inside, shown in parts:
            if not shown:
                continue
            if runs and runs[-1][0] == inside:
                runs[-1] = (inside, runs[-1][1] + shown)
            else:
                runs.append((inside, shown))
    mark = (lambda t: typer.style(t, bold=True, underline=True)) if color else (lambda t: f"【{t}】")
    return "".join(mark(t) if inside else t for inside, t in runs)


def _print_answer(answer, color: bool) -> None:
    from .cite import page_label, reference

    if answer.not_found:
        reason = answer.not_found_reason
        typer.secho(
            "Not found: the report does not seem to answer this question"
            + (f" ({reason})" if reason else "")
            + "; the closest passages are:",
            fg="yellow" if color else None,
        )
    for i, hit in enumerate(answer.hits):
        p = hit.passage
        head = f"[{hit.rank}] {' > '.join(p.section[1:] or p.section)}"
        typer.echo(typer.style(head, bold=True) if color else head)
        typer.echo(f"    {answer.titles.get(p.source, p.source)}")
        page = page_label(p)
        typer.echo(f"    {reference(p)}{', ' + page if page else ''}  (chars {p.start}-{p.end}, score {hit.score:.4f}, id {p.id})")
        terms = answer.terms_of(i)
        if terms:
            typer.echo("    matched: " + ", ".join(f"{m.query} → {m.passage}" for m in terms))
        body = _highlighted(hit, color).replace("\r\n", "\n").replace("\r", "\n")
        for line in body.split("\n"):
            if line.strip():
                typer.echo("    " + line.strip())
        typer.echo("")


class _EmbeddingBar:
    """Embedding progress on stderr: a bar, texts/s and an ETA, redrawn at most twice a second
    (nothing when nothing is embedded)."""

    WIDTH = 30

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self.t0: float | None = None
        self.shown = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        now = self._clock()
        if self.t0 is None:
            self.t0 = now
        if done < total and now - self.shown < 0.5:
            return
        self.shown = now
        elapsed = now - self.t0
        rate = done / elapsed if elapsed > 0 and done else 0.0
        eta = f"ETA {int((total - done) / rate) // 60}:{int((total - done) / rate) % 60:02d}" if rate else "ETA --:--"
        filled = self.WIDTH * done // total
        sys.stderr.write(f"\rEmbedding [{'#' * filled}{'-' * (self.WIDTH - filled)}] {done}/{total} texts, {rate:.1f}/s, {eta} ")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


@app.command()
def index(
    corpus: Optional[Path] = CorpusOpt,
    index_dir: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    store: Optional[str] = StoreOpt,
    index_type: str = typer.Option("auto", "--index-type", help="Dense index: auto, flat, hnsw or ivfpq (with --store milvus also a Milvus index type, checked against the target)."),
    force: bool = typer.Option(False, "--force", help="Write a new version even when nothing changed."),
) -> None:
    """Bring the index up to date: embed new or changed files only, drop removed ones."""
    assistant = _assistant(corpus, index_dir, model, store, index_type=index_type)
    bar = _EmbeddingBar()
    try:
        manifest = assistant.build(progress=bar, force=force)
    finally:
        bar.close()
    typer.echo(
        f"Indexed {manifest.passages} passages ({manifest.units} vectors, dim {manifest.dim}, {manifest.index_type}) "
        f"from {len(manifest.corpus)} file(s) with {manifest.model}: {assistant.last_update.line()}."
    )


@app.command()
def add(
    file: Path = typer.Argument(..., help="A .pdf, .docx, .md or .txt file to add to the corpus."),
    name: Optional[str] = typer.Option(None, "--name", help="File name in the corpus, without suffix (default: the file's own)."),
    force: bool = typer.Option(False, "--force", help="Replace a corpus file of the same name."),
    corpus: Optional[Path] = CorpusOpt,
) -> None:
    """Convert a report (PDF: its text layer, with page offsets) into the corpus; the next question re-indexes."""
    from .ingest import add_file

    added = add_file(file, corpus or config.Settings().corpus_dir, name=name, overwrite=force)
    pages = f", {added.pages} page(s)" if added.pages else ""
    typer.echo(f"Added {added.text_path} ({added.chars} characters{pages}; title: {added.title}) and {added.meta_path.name}.")


def _read_batch(path: Path):
    """(line number, id, question) for good lines; bad lines are reported on stderr and skipped."""
    bad = 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read batch file {path}: {exc}") from None
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or not isinstance(obj.get("question"), str):
                raise ValueError('expected an object with a "question" string')
            items.append((n, obj.get("id", n), obj["question"]))
        except ValueError as exc:
            typer.echo(f"{path}:{n}: skipped: {exc}", err=True)
            bad += 1
    return items, bad


@app.command()
def ask(
    question: Optional[str] = typer.Argument(None, help="The question, in Chinese or English."),
    k: int = typer.Option(config.DEFAULT_K, "--k", "-k", help="How many passages to return."),
    mode: str = typer.Option(config.DEFAULT_MODE, "--mode", help="hybrid, dense or bm25."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per question."),
    batch: Optional[Path] = typer.Option(None, "--batch", help='JSONL file of {"id", "question"} lines.'),
    doc: Optional[list[str]] = DocOpt,
    corpus: Optional[Path] = CorpusOpt,
    index_dir: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    store: Optional[str] = StoreOpt,
) -> None:
    """Answer a question with cited passages of the report."""
    if (question is None) == (batch is None):
        raise RagError('give either a QUESTION or --batch FILE.jsonl, e.g. rag ask "东盟的中心地位是什么？"')
    config.check_k(k)
    config.check_mode(mode)
    assistant = _assistant(corpus, index_dir, model, store)
    color = sys.stdout.isatty()
    docs = assistant.scope(doc) if doc else None
    if batch is None:
        answer = assistant.ask(question, k=k, mode=mode, docs=docs)
        for notice in answer.notices:
            typer.echo(f"note: {notice}", err=True)
        if as_json:
            typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            _print_answer(answer, color)
        return
    items, bad = _read_batch(batch)
    for n, qid, q in items:
        try:
            answer = assistant.ask(q, k=k, mode=mode, id=qid, docs=docs)
        except (EmptyQuestionError, InvalidArgumentError) as exc:
            typer.echo(f"{batch}:{n}: skipped: {exc}", err=True)
            bad += 1
            continue
        if as_json:
            typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            typer.echo(f"## {qid}: {q}")
            _print_answer(answer, color)
    if bad:
        raise typer.Exit(code=1)


@app.command()
def show(
    citation: str = typer.Argument(..., help="A passage id (corpus/<file>#N) or a line reference (corpus/<file>:L40)."),
    context: int = typer.Option(2, "--context", "-C", help="Lines of context before and after."),
    corpus: Optional[Path] = CorpusOpt,
    index_dir: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    store: Optional[str] = StoreOpt,
) -> None:
    """Print a cited passage with the text around it (link addresses and citation markers folded, as in rag ask)."""
    from .cite import shown_context

    if context < 0:
        raise RagError("--context must be 0 or more lines")
    ctx = _assistant(corpus, index_dir, model, store).show(citation, context_lines=context)
    color = sys.stdout.isatty()
    typer.echo(f"{ctx.document.source}:L{ctx.line_start}-{ctx.line_end}  (chars {ctx.start}-{ctx.end})")
    if ctx.section:
        typer.echo(" > ".join(ctx.section))
    if ctx.passage_ids:
        typer.echo(("passage " if len(ctx.passage_ids) == 1 else "passages ") + ", ".join(ctx.passage_ids))
    typer.echo("")
    before, text, after = shown_context(ctx)
    body = before + (typer.style(text, bold=True) if color else f"【{text}】") + after
    typer.echo(body.rstrip("\r\n"))


@app.command("eval")
def eval_(
    gold: Optional[list[Path]] = typer.Argument(None, help="Gold JSONL files (default: the project's eval/gold_*.jsonl)."),
    k: int = typer.Option(10, "--k", "-k", help="Passages retrieved per question."),
    mode: str = typer.Option(config.DEFAULT_MODE, "--mode", help="Mode to evaluate (without --compare)."),
    compare: bool = typer.Option(False, "--compare", help="Evaluate every mode side by side."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the Markdown report to this file."),
    chunking: Optional[list[str]] = typer.Option(
        None, "--chunking", help="Evaluate other chunking, e.g. --chunking max_chars=300 (own index, built if needed)."
    ),
    doc: Optional[list[str]] = typer.Option(
        None, "--doc", help="Ask the gold questions of this document only (repeatable); evidence is located in it."
    ),
    corpus: Optional[Path] = CorpusOpt,
    index_dir: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    store: Optional[str] = StoreOpt,
) -> None:
    """Score retrieval against a gold Q&A set, per language, difficulty and question type."""
    from .evaluate import COMPARE_MODES, load_gold, render_markdown, report_json
    from .evaluate import compare as compare_modes

    config.check_k(k)
    config.check_mode(mode)
    paths = gold or sorted((config.project_root() / "eval").glob("gold_*.jsonl"))
    if not paths:
        raise RagError("no gold files given and none found under eval/gold_*.jsonl")
    cases = load_gold(paths)
    extra = {}
    if chunking:
        from .chunking import ChunkSettings

        settings = ChunkSettings.with_overrides(chunking)
        base = index_dir or config.default_index_dir()
        extra = {"chunking": settings}
        index_dir = base / f"eval-{settings.digest()}"
    assistant = _assistant(corpus, index_dir, model, store, **extra)
    modes = list(COMPARE_MODES) if compare else [mode]
    reports = compare_modes(assistant, cases, modes, k=k, docs=doc or None)
    markdown = render_markdown(reports)
    if out:
        from . import atomic

        atomic.write_text(out, markdown + "\n")
    if as_json:
        typer.echo(json.dumps(report_json(reports), ensure_ascii=False, indent=1))
    else:
        typer.echo(markdown)


@app.command()
def docs(
    as_json: bool = typer.Option(False, "--json", help="One JSON array of documents."),
    corpus: Optional[Path] = CorpusOpt,
    index_dir: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    store: Optional[str] = StoreOpt,
) -> None:
    """List the corpus: titles, publisher and year, passages, and whether the index is up to date."""
    rows = _assistant(corpus, index_dir, model, store).documents_status()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=1))
        return
    for r in rows:
        passages = "–" if r.passages is None else str(r.passages)
        typer.echo(f"{r.state:<8} {passages:>5}  {r.name}")
        titles = " / ".join(t for t in dict.fromkeys((r.title_zh, r.title_en)) if t) or (r.title if r.title != r.name else "")
        about = ", ".join(x for x in (r.publisher, r.year) if x)
        if titles or about:
            typer.echo("               " + titles + (f"  ({about})" if about else ""))
    from .catalog import STATES

    counts = {s: sum(r.state == s for r in rows) for s in STATES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    typer.echo(f"{sum(r.state != 'removed' for r in rows)} document(s) in the corpus: {summary}.")
    if counts["stale"] or counts["changed"] or counts["new"] or counts["removed"]:
        typer.echo("The index is out of date; rebuild it with: rag index", err=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port (0: any free one)."),
    workers: int = typer.Option(4, "--workers", min=1, help="Questions answered at once (threads)."),
    cors: Optional[str] = typer.Option(None, "--cors", help="One other origin allowed to call the API from a browser (none by default)."),
    corpus: Optional[Path] = CorpusOpt,
    index_dir: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    store: Optional[str] = StoreOpt,
) -> None:
    """Serve the web page at / and the HTTP API (docs at /docs).

    POST /ask, POST /ask/batch, GET /passages/…, GET /documents, GET /healthz; RAG_API_KEY, if set, is required.
    """
    try:
        from .server import serve as run_server
    except ImportError as exc:
        raise RagError(f"the server needs the 'serve' extra ({exc.name} is missing): pip install -e '.[serve]'") from None
    run_server(host=host, port=port, assistant=_assistant(corpus, index_dir, model, store), workers=workers, cors=cors)


def main() -> None:
    """Entry point: library errors become one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except RagError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # usage errors: click's, or typer's own copy of click (typer >= 0.2x)
        if _is_usage_error(exc):
            ctx = getattr(exc, "ctx", None)
            where = f"; see: {ctx.command_path if ctx is not None else 'rag'} --help"
            typer.echo(f"error: {exc.format_message().rstrip('.')}{where}", err=True)
            sys.exit(exc.exit_code)
        raise


def _is_usage_error(exc: Exception) -> bool:
    """A ClickException (a bad option, a missing argument, an unknown command): click's, or the one
    typer vendors (`typer._click`), which does not derive from click's."""
    import click

    if isinstance(exc, click.ClickException):
        return True
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__) and isinstance(getattr(exc, "exit_code", None), int)
