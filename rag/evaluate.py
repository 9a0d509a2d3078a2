"""Retrieval evaluation against a gold set: recall, MRR, nDCG, abstention, citation faithfulness.

Usage (what `rag eval` does)::

    cases = load_gold(["eval/gold_dev.jsonl"])
    reports = compare(Assistant(), cases, ["bm25", "dense", "hybrid"], k=10)
    print(render_markdown(reports))          # or json.dumps(report_json(reports))

Definitions (every metric is a pure function below, testable without the model):

* Evidence spans are located with `str.find` in the text of each corpus file, read from disk and
  decoded as UTF-8, at every occurrence (a report may state the same sentence in its summary and
  in its body: a passage holding either answers); a span may be located in several files, and a
  passage is compared with the locations in its own file. A gold span found in no file is an error
  (`GoldError`).
* In a library, a gold set is about some documents, and a passage of another report that happens
  to quote an evidence sentence does not answer the question. So evidence is located only in the
  **evidence files**: the scope when the questions are asked of some documents (`docs`), else the
  files that hold the evidence of every answerable question (`home_files`: the gold set's own
  report); only when no file holds them all is every file searched.
* A question may name its report (`"file": "report.md"`, matched against the corpus file's name):
  its evidence is then located **in that file only** (a passage of another report quoting the same
  sentence does not answer it), and `home_files` is computed over the questions that name none.
  A question whose file is not among the files asked (the corpus, or the `docs` scope) cannot be
  asked: it is left out, and the report says how many were (`EvalReport.left_out`).
  With `own_file=True` each such question is asked of its own file only (`ask(…, docs=…)`).
* A passage **covers** an evidence span when, in the same file, it overlaps at least half of the
  span's characters. A question is **hit at rank r** when the passage at position r (1-based, the
  order `ask` returned) covers one of its spans; its *first rank* is the smallest such r.
* **Recall@c**: share of answerable questions whose first rank is <= c.
  **All-evidence R@5**: share of questions with two or more spans whose every span is covered by
  some passage of the top 5. **MRR@10**: mean of 1/first rank (0 beyond 10).
* **nDCG@10**: gain 1 for each distinct evidence span at the rank where it is *first* covered
  (so several passages covering the same span earn it once), discounted by 1/log2(1 + r);
  IDCG = sum_{i=1..min(#spans, 10)} 1/log2(1 + i), i.e. one span per position. A single passage
  covering two spans earns both gains at its rank, which can beat that ideal; nDCG is capped at 1.
* **Highlight OK**: the rank-1 passage's highlighted sentence overlaps an evidence span (same file)
  by at least half of the *shorter* of the two (highlight, span). Highlight accuracy is measured
  over answerable questions whose rank-1 passage is a hit, so it judges the highlighter, not the
  retriever; the share over all answerable questions is reported too (`highlight_any`).
* **Faithful**: every returned passage satisfies `file_text[start:end] == text`, and its
  `line_start`/`line_end` are the 1-based lines of its first and last character, lines being ended
  by `\\n`, `\\r\\n` or a lone `\\r`.
* **Reference-list hits**: a top-5 passage comes from a reference list when it is mostly links
  (`rag.markup.is_link_dump`: most of its lines are reference entries) or is a `links` passage;
  `reference_top5` is the share of all top-5 passages of a slice that do.
* **Abstention**: `flagged` is the share of unanswerable questions (no evidence) answered with
  `not_found`; `false_flag` the share of answerable questions answered with `not_found`.
* Latency is wall time of `ask`, after one untimed warm-up question (model and index loading).
* **Sets**: each case belongs to the set of its file (``gold_dev.jsonl`` -> "dev"); a lockbox
  (``gold_lockbox*.jsonl``, and the library's ``gold_library*.jsonl``) is split by the parity of the
  number in its ids: odd -> "lockbox-A" / "library-A" (may be tuned on), even -> "lockbox-B" /
  "library-B" (held out: reported only in aggregate, never question by question). `render_sets`
  prints the headline figures per mode and set in one table.
* A metric at cutoff c is None when c > k (fewer passages were asked for than it needs), and any
  metric is None when its slice has no question it applies to.
"""

from __future__ import annotations

import json
import math
import re
import time
from bisect import bisect_right
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from . import config
from .errors import RagError
from .markup import is_link_dump, visible_length

if TYPE_CHECKING:  # pragma: no cover
    from .chunking import Passage
    from .retrieve import Hit

#: Rank depth of MRR and nDCG.
DEPTH = 10
#: How many top passages the mean passage length looks at. A passage's length is what a reader
#: reads (`rag.markup.visible_length`): link targets and citation markers, which hits list as
#: `hidden` spans for a display to fold, are not counted (a library's Markdown reports carry a
#: 200-character URL in nearly every sentence); the cited text and offsets stay the file's own.
TOP_LENGTH = 5
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DIFFICULTY_ORDER = {"easy": 0, "medium": 1, "hard": 2}
_LANG_ORDER = {"zh": 0, "en": 1, "zh-Hant": 2}
_REQUIRED = ("id", "lang", "question", "evidence", "type", "difficulty")
#: Gold files (by name, after ``gold_``) whose questions are split by id parity into a half to
#: tune on ("-A") and a held-out half ("-B"): the CISS report's lockbox and the library's.
SPLIT = ("lockbox", "library")
_ID_NUMBER = re.compile(r"(\d+)\s*$")


class GoldError(RagError):
    """A gold file cannot be read, a line is malformed, or an evidence span is not in the corpus."""


# -- gold set ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GoldCase:
    """One gold question: verbatim evidence spans of the report, none when it is unanswerable."""

    id: str
    lang: str
    question: str
    answer: str
    evidence: tuple[str, ...]
    section: str
    type: str
    difficulty: str
    origin: str = ""  # "file:line" it was read from
    set: str = ""  # "dev", "lockbox-A", "lockbox-B", … (see `gold_set`)
    file: str = ""  # the report the question is about (a corpus file's name); "" = the set's home report

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)


def gold_set(path: str | Path, case_id: str) -> str:
    """The set a case belongs to: its file's name without ``gold_`` and ``.jsonl``; a lockbox file
    (see `SPLIT`) is split by the parity of the number ending the id (L001 -> "lockbox-A",
    L002 -> "lockbox-B"; B001 of gold_library.jsonl -> "library-A")."""
    name = Path(path).stem
    name = name[len("gold_"):] if name.startswith("gold_") else name
    m = _ID_NUMBER.search(case_id)
    if name.startswith(SPLIT) and m:
        return f"{name}-{'A' if int(m.group(1)) % 2 else 'B'}"
    return name


def held_out(set_name: str) -> bool:
    """The held-out half of a lockbox ("lockbox-B", "library-B"): reported only in aggregate, no
    per-question output names its questions."""
    return set_name.endswith("-B") and set_name[:-2].startswith(SPLIT)


def _case(obj: object, where: str) -> GoldCase:
    if not isinstance(obj, dict):
        raise GoldError(f"{where}: expected a JSON object")
    missing = [key for key in _REQUIRED if key not in obj]
    if missing:
        raise GoldError(f"{where}: missing field(s) {', '.join(missing)}")
    evidence = obj["evidence"]
    if not isinstance(evidence, list) or not all(isinstance(e, str) and e for e in evidence):
        raise GoldError(f"{where}: evidence must be a list of non-empty strings")
    for key in ("id", "lang", "question", "type", "difficulty"):
        if not isinstance(obj[key], str) or not obj[key].strip():
            raise GoldError(f"{where}: {key} must be a non-empty string")
    file = obj.get("file", "")
    if not isinstance(file, str) or ("file" in obj and not file.strip()):
        raise GoldError(f"{where}: file must be a non-empty string (a corpus file's name)")
    return GoldCase(
        id=obj["id"],
        lang=obj["lang"],
        question=obj["question"],
        answer=str(obj.get("answer", "")),
        evidence=tuple(evidence),
        section=str(obj.get("section", "")),
        type=obj["type"],
        difficulty=obj["difficulty"],
        origin=where,
        file=file.strip(),
    )


def load_gold(paths: str | Path | Iterable[str | Path]) -> list[GoldCase]:
    """Every case of one or more JSONL gold files, in file order; ids must be unique across files."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    cases: list[GoldCase] = []
    seen: dict[str, str] = {}
    for path in map(Path, paths):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise GoldError(f"cannot read gold file {path}: {exc}") from None
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GoldError(f"{where}: not valid JSON ({exc.msg})") from None
            case = _case(obj, where)
            case = replace(case, set=gold_set(path, case.id))
            if case.id in seen:
                raise GoldError(f"{where}: id {case.id!r} already used at {seen[case.id]}")
            seen[case.id] = where
            cases.append(case)
    if not cases:
        raise GoldError("the gold files hold no questions")
    return cases


# -- the corpus as the files say it --------------------------------------------------------------
@dataclass(frozen=True)
class SourceFile:
    """A corpus file's text (decoded from disk) and the offsets where its lines start."""

    source: str
    text: str
    line_starts: tuple[int, ...]

    @classmethod
    def of(cls, source: str, text: str) -> "SourceFile":
        return cls(source, text, (0, *(m.end() for m in _LINE_BREAK.finditer(text))))

    def line_of(self, offset: int) -> int:
        """1-based line of the character at `offset`."""
        return bisect_right(self.line_starts, offset)


def source_files(documents: Iterable[object]) -> dict[str, SourceFile]:
    """source -> SourceFile; the text is re-read from the document's file when it has one on disk."""
    files: dict[str, SourceFile] = {}
    for doc in documents:
        path = getattr(doc, "path", None)
        text = Path(path).read_bytes().decode("utf-8") if path and Path(path).is_file() else doc.text
        files[doc.source] = SourceFile.of(doc.source, text)
    return files


@dataclass(frozen=True)
class Span:
    """A character span [start, end) of one corpus file."""

    source: str
    start: int
    end: int

    def __len__(self) -> int:
        return max(0, self.end - self.start)


def locate(evidence: str, files: Mapping[str, SourceFile]) -> tuple[Span, ...]:
    """Where an evidence span occurs (every occurrence, by str.find) in each file holding it."""
    spans = []
    for f in files.values():
        i = f.text.find(evidence)
        while i >= 0:
            spans.append(Span(f.source, i, i + len(evidence)))
            i = f.text.find(evidence, i + 1)
    return tuple(spans)


def home_files(cases: Sequence[GoldCase], files: Mapping[str, SourceFile]) -> dict[str, SourceFile]:
    """The files holding every evidence span of every answerable case (the report the gold set is
    about); all `files` when no file holds them all."""
    common = set(files)
    for case in cases:
        for evidence in case.evidence:
            common &= {s.source for s in locate(evidence, files)}
            if not common:
                return dict(files)
    return {source: f for source, f in files.items() if source in common}


def named_files(name: str, files: Mapping[str, SourceFile]) -> dict[str, SourceFile]:
    """The files a question's ``file`` names: the source itself (`corpus/x.md`) or a source whose
    last part is that name (`x.md`)."""
    return {source: f for source, f in files.items() if source == name or source.rsplit("/", 1)[-1] == name}


def case_files(
    case: GoldCase, home: Mapping[str, SourceFile], files: Mapping[str, SourceFile]
) -> dict[str, SourceFile]:
    """Where a case's evidence is located: the file it names (among `files`), else `home`."""
    return named_files(case.file, files) if case.file else dict(home)


def locate_case(case: GoldCase, files: Mapping[str, SourceFile]) -> tuple[tuple[Span, ...], ...]:
    """The locations of each evidence span of a case; a span found nowhere is a GoldError."""
    located = tuple(locate(e, files) for e in case.evidence)
    for text, spans in zip(case.evidence, located):
        if not spans:
            short = text if len(text) <= 40 else text[:40] + "…"
            raise GoldError(f"{case.origin or case.id}: evidence {short!r} of {case.id} is in no corpus file")
    return located


# -- pure metric functions -----------------------------------------------------------------------
def overlap(a: Span, b: Span) -> int:
    """Characters two spans share (0 when they are in different files)."""
    if a.source != b.source:
        return 0
    return max(0, min(a.end, b.end) - max(a.start, b.start))


def covers(passage: Span, evidence: Span) -> bool:
    """The passage holds at least half of the evidence span's characters."""
    return len(evidence) > 0 and 2 * overlap(passage, evidence) >= len(evidence)


def highlight_matches(highlight: Span, evidence: Span) -> bool:
    """The highlight and the span overlap by at least half of the shorter of the two."""
    shorter = min(len(highlight), len(evidence))
    return shorter > 0 and 2 * overlap(highlight, evidence) >= shorter


def evidence_ranks(ranked: Sequence[Span], evidence: Sequence[Sequence[Span]]) -> tuple[int | None, ...]:
    """For each evidence span (given by its locations), the first 1-based rank covering it, or None."""
    out = []
    for locations in evidence:
        out.append(next((r for r, p in enumerate(ranked, 1) if any(covers(p, e) for e in locations)), None))
    return tuple(out)


def first_rank(span_ranks: Sequence[int | None]) -> int | None:
    """The rank at which the question is first hit (any span covered), or None."""
    found = [r for r in span_ranks if r is not None]
    return min(found) if found else None


def hit_at(rank: int | None, cutoff: int) -> bool:
    return rank is not None and rank <= cutoff


def reciprocal_rank(rank: int | None, depth: int = DEPTH) -> float:
    """1/rank when the question is hit within `depth`, else 0."""
    return 1.0 / rank if hit_at(rank, depth) else 0.0


def all_covered(span_ranks: Sequence[int | None], cutoff: int = 5) -> bool:
    """Every evidence span is covered by some passage ranked <= cutoff."""
    return bool(span_ranks) and all(hit_at(r, cutoff) for r in span_ranks)


def ndcg(span_ranks: Sequence[int | None], depth: int = DEPTH) -> float:
    """nDCG@depth with gain 1 per distinct span at its first covering rank (see the module doc)."""
    if not span_ranks:
        return 0.0
    dcg = sum(1.0 / math.log2(1 + r) for r in span_ranks if hit_at(r, depth))
    idcg = sum(1.0 / math.log2(1 + i) for i in range(1, min(len(span_ranks), depth) + 1))
    return min(1.0, dcg / idcg)


def passage_problem(passage: "Passage", files: Mapping[str, SourceFile]) -> str | None:
    """Why a passage's citation disagrees with its file, or None when it is faithful."""
    f = files.get(passage.source)
    pid = getattr(passage, "id", "?")
    if f is None:
        return f"{pid}: {passage.source} is not a corpus file"
    if not 0 <= passage.start < passage.end <= len(f.text):
        return f"{pid}: span {passage.start}-{passage.end} is empty or outside the file ({len(f.text)} chars)"
    if f.text[passage.start : passage.end] != passage.text:
        return f"{pid}: text differs from the file at {passage.start}-{passage.end}"
    lines = (f.line_of(passage.start), f.line_of(passage.end - 1))
    if (passage.line_start, passage.line_end) != lines:
        return f"{pid}: cites lines {passage.line_start}-{passage.line_end}, the file has them on {lines[0]}-{lines[1]}"
    return None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rate(flags: Sequence[bool]) -> float | None:
    return _mean([1.0 if f else 0.0 for f in flags])


# -- one question --------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuestionResult:
    """How the passages returned for one gold question fare."""

    id: str
    lang: str
    difficulty: str
    type: str
    answerable: bool
    n_evidence: int
    first_rank: int | None  # first rank (1-based) covering any evidence span
    span_ranks: tuple[int | None, ...]  # first covering rank of each evidence span
    not_found: bool
    highlight_ok: bool | None  # None for unanswerable questions
    faithful: bool
    problems: tuple[str, ...]  # why passages are not faithful
    top5_mean_chars: float | None  # mean visible length of the top-5 passages' text
    latency_ms: float
    n_hits: int
    set: str = ""  # the gold set of the case (see `gold_set`)
    top5_reference: int = 0  # top-5 passages that come from a reference list (`is_reference`)
    file: str = ""  # the report the question names, if any


def is_reference(passage: "Passage") -> bool:
    """The passage comes from a reference list or link dump: a `links` passage, or mostly links."""
    return passage.kind == "links" or is_link_dump(passage.text)


def score_question(
    case: GoldCase,
    hits: Sequence["Hit"],
    not_found: bool,
    files: Mapping[str, SourceFile],
    latency_ms: float = 0.0,
    evidence_files: Mapping[str, SourceFile] | None = None,
) -> QuestionResult:
    """Score the hits `ask` returned for one case, in the order returned; evidence is located in
    `evidence_files` (default: every file), citations are checked against `files`."""
    evidence = locate_case(case, files if evidence_files is None else evidence_files)
    ranked = [Span(h.passage.source, h.passage.start, h.passage.end) for h in hits]
    span_ranks = evidence_ranks(ranked, evidence)
    highlight_ok = None
    if case.answerable:
        top = hits[0] if hits else None
        mark = Span(top.passage.source, *top.highlight) if top is not None and top.highlight else None
        highlight_ok = mark is not None and any(highlight_matches(mark, e) for spans in evidence for e in spans)
    problems = tuple(p for p in (passage_problem(h.passage, files) for h in hits) if p)
    top = [visible_length(h.passage.text) for h in hits[:TOP_LENGTH]]
    return QuestionResult(
        id=case.id,
        lang=case.lang,
        difficulty=case.difficulty,
        type=case.type,
        answerable=case.answerable,
        n_evidence=len(case.evidence),
        first_rank=first_rank(span_ranks),
        span_ranks=span_ranks,
        not_found=bool(not_found),
        highlight_ok=highlight_ok,
        faithful=not problems,
        problems=problems,
        top5_mean_chars=_mean(top),
        latency_ms=latency_ms,
        n_hits=len(hits),
        set=case.set,
        top5_reference=sum(is_reference(h.passage) for h in hits[:TOP_LENGTH]),
        file=case.file,
    )


# -- aggregation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metrics:
    """Aggregated metrics of one slice of the gold set (rates are fractions in [0, 1])."""

    slice: str
    n: int
    answerable: int
    unanswerable: int
    multi_evidence: int  # answerable questions with >= 2 spans
    recall_1: float | None
    recall_3: float | None
    recall_5: float | None
    recall_10: float | None
    all_evidence_r5: float | None
    mrr_10: float | None
    ndcg_10: float | None
    faithful: float | None
    mean_top5_chars: float | None
    flagged: float | None  # unanswerable questions answered with not_found
    false_flag: float | None  # answerable questions answered with not_found
    highlight: float | None  # highlight OK among answerable questions hit at rank 1
    highlight_n: int
    highlight_any: float | None  # highlight OK among all answerable questions
    latency_ms: float | None
    latency_p95_ms: float | None
    reference_top5: float | None = None  # share of top-5 passages from a reference list


def _p95(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def aggregate(name: str, results: Sequence[QuestionResult], k: int = DEPTH) -> Metrics:
    """Metrics of one slice; cutoff metrics beyond the k passages asked for are None."""
    ans = [r for r in results if r.answerable]
    multi = [r for r in ans if r.n_evidence >= 2]

    def recall(c: int) -> float | None:
        return _rate([hit_at(r.first_rank, c) for r in ans]) if c <= k else None

    at_depth = DEPTH <= k
    top1 = [r for r in ans if r.first_rank == 1]
    latencies = [r.latency_ms for r in results]
    return Metrics(
        slice=name,
        n=len(results),
        answerable=len(ans),
        unanswerable=len(results) - len(ans),
        multi_evidence=len(multi),
        recall_1=recall(1),
        recall_3=recall(3),
        recall_5=recall(5),
        recall_10=recall(10),
        all_evidence_r5=_rate([all_covered(r.span_ranks, 5) for r in multi]) if k >= 5 else None,
        mrr_10=_mean([reciprocal_rank(r.first_rank) for r in ans]) if at_depth else None,
        ndcg_10=_mean([ndcg(r.span_ranks) for r in ans]) if at_depth else None,
        faithful=_rate([r.faithful for r in results]),
        mean_top5_chars=_mean([r.top5_mean_chars for r in results if r.top5_mean_chars is not None]),
        flagged=_rate([r.not_found for r in results if not r.answerable]),
        false_flag=_rate([r.not_found for r in ans]),
        highlight=_rate([bool(r.highlight_ok) for r in top1]),
        highlight_n=len(top1),
        highlight_any=_rate([bool(r.highlight_ok) for r in ans]),
        latency_ms=_mean(latencies),
        latency_p95_ms=_p95(latencies),
        reference_top5=_top5_reference(results),
    )


def _top5_reference(results: Sequence[QuestionResult]) -> float | None:
    shown = sum(min(r.n_hits, TOP_LENGTH) for r in results)
    return sum(r.top5_reference for r in results) / shown if shown else None


def _ordered(values: Iterable[str], order: Mapping[str, int]) -> list[str]:
    return sorted(set(values), key=lambda v: (order.get(v, len(order)), v))


def slices(results: Sequence[QuestionResult], k: int = DEPTH) -> list[Metrics]:
    """overall, then per lang, per difficulty, per type, and per lang×difficulty."""
    langs = _ordered((r.lang for r in results), _LANG_ORDER)
    levels = _ordered((r.difficulty for r in results), _DIFFICULTY_ORDER)
    types = _ordered((r.type for r in results), {})
    out = [aggregate("overall", results, k)]
    out += [aggregate(f"lang={v}", [r for r in results if r.lang == v], k) for v in langs]
    out += [aggregate(f"difficulty={v}", [r for r in results if r.difficulty == v], k) for v in levels]
    out += [aggregate(f"type={v}", [r for r in results if r.type == v], k) for v in types]
    for lang in langs:
        for level in levels:
            subset = [r for r in results if r.lang == lang and r.difficulty == level]
            if subset:
                out.append(aggregate(f"lang×difficulty={lang}/{level}", subset, k))
    return out


@dataclass(frozen=True)
class EvalReport:
    """One mode's run over the gold set: per-question results and per-slice metrics."""

    mode: str
    k: int
    results: tuple[QuestionResult, ...]
    slices: tuple[Metrics, ...]
    #: Sources the questions were asked of (empty: the whole corpus), and where evidence was located.
    scope: tuple[str, ...] = ()
    evidence_in: tuple[str, ...] = ()
    #: Ids of questions not asked: the file they name is not among the files asked.
    left_out: tuple[str, ...] = ()
    #: Each question naming a file was asked of that file only.
    own_file: bool = False

    @property
    def overall(self) -> Metrics:
        return self.slices[0]

    def metrics(self, name: str) -> Metrics | None:
        """The slice called `name` (e.g. "lang=zh", "difficulty=hard"), or None if it is empty."""
        return next((m for m in self.slices if m.slice == name), None)


@dataclass(frozen=True)
class Headline:
    """The figures a change is judged by, for one mode on one gold set (rates are fractions)."""

    mode: str
    set: str
    n: int
    zh_recall_5: float | None
    zh_mrr_10: float | None
    en_recall_5: float | None
    en_mrr_10: float | None
    flagged: float | None  # unanswerable questions answered with not_found
    false_flag: float | None  # answerable questions answered with not_found
    faithful: float | None
    mean_top5_chars: float | None
    reference_top5: float | None = None  # share of top-5 passages from a reference list


def set_names(results: Sequence[QuestionResult]) -> list[str]:
    """The sets present, in the order their first question was read."""
    return list(dict.fromkeys(r.set for r in results))


def headlines(report: EvalReport) -> list[Headline]:
    """One `Headline` per gold set of the report's questions (see `gold_set`)."""
    out = []
    for name in set_names(report.results):
        subset = [r for r in report.results if r.set == name]
        whole = aggregate(name, subset, report.k)
        zh = aggregate("zh", [r for r in subset if r.lang == "zh"], report.k)
        en = aggregate("en", [r for r in subset if r.lang == "en"], report.k)
        out.append(Headline(
            mode=report.mode, set=name, n=len(subset),
            zh_recall_5=zh.recall_5, zh_mrr_10=zh.mrr_10, en_recall_5=en.recall_5, en_mrr_10=en.mrr_10,
            flagged=whole.flagged, false_flag=whole.false_flag, faithful=whole.faithful,
            mean_top5_chars=whole.mean_top5_chars, reference_top5=whole.reference_top5,
        ))
    return out


# -- running -------------------------------------------------------------------------------------
#: Measurement variants: a search mode without one lever, to show what the lever brings. They are
#: not search modes of the API: only the evaluator runs them. "-nobridge": English questions do
#: not borrow Chinese terms for the dense side (`rag.retrieve.dense_query`); "-rrf": dense and
#: BM25 fused by reciprocal rank, not by score (`rag.retrieve.fuse`).
VARIANTS: dict[str, tuple[str, dict]] = {
    "hybrid-rrf": ("hybrid", {"fusion": "rrf"}),
    "hybrid-synonyms": ("hybrid", {"synonyms": True}),
    "hybrid-nobridge": ("hybrid", {"bridge": False}),
    "dense-nobridge": ("dense", {"bridge": False}),
}
#: What `rag eval --compare` runs side by side.
COMPARE_MODES = (*config.MODES, *VARIANTS)


def evaluate(
    assistant,
    cases: list[GoldCase],
    k: int = 10,
    mode: str = "hybrid",
    docs: Sequence[str] | None = None,
    own_file: bool = False,
) -> EvalReport:
    """Ask every case with `assistant.ask(question, k=k, mode=mode)` and score the answers.

    `assistant` needs `.ask()` (returning an object with `.hits` and `.not_found`) and `.documents()`;
    with `docs` (file names, globs or titles) the questions are asked of those documents only
    (`ask(…, docs=…)`, and `.scope()` resolves them) and their evidence is located in them.
    A case naming its report (`GoldCase.file`) has its evidence located in that file only; with
    `own_file` it is also asked of that file only. A case whose file is not among the files asked
    is left out (`EvalReport.left_out`); GoldError when no case is left.
    `mode` may also be a measurement variant (VARIANTS), asked through the assistant's search switches.
    Every evidence span is located before anything is asked, so a bad gold set fails fast.
    """
    if mode in VARIANTS:
        base, switches = VARIANTS[mode]

        def ask(question: str, **extra):
            return assistant._answer(question, k, base, **extra, **switches)
    else:
        config.check_mode(mode)

        def ask(question: str, **extra):
            return assistant.ask(question, k=k, mode=mode, **extra)

    files = source_files(assistant.documents())
    scope = assistant.scope(docs) if docs else None
    asked = files if scope is None else {source: f for source, f in files.items() if source in scope}
    left_out = tuple(c.id for c in cases if c.file and not named_files(c.file, asked))
    cases = [c for c in cases if c.id not in left_out]
    if not cases:
        raise GoldError(f"none of the {len(left_out)} questions can be asked: the files they name are not "
                        f"among the {len(asked)} file(s) asked")
    general = [c for c in cases if not c.file]
    home = asked if scope is not None else home_files(general, files)
    where = {c.id: case_files(c, home, asked) for c in cases}
    for case in cases:
        locate_case(case, where[case.id])
    whole = {"docs": scope} if scope is not None else {}

    def extra(case: GoldCase) -> dict:
        return {"docs": frozenset(where[case.id])} if own_file and case.file else whole

    # warm-up: loading the model or building the index is not a question's latency
    ask(cases[0].question, **extra(cases[0]))
    results = []
    for case in cases:
        t0 = time.perf_counter()
        answer = ask(case.question, **extra(case))
        ms = (time.perf_counter() - t0) * 1000.0
        results.append(score_question(case, list(answer.hits), answer.not_found, files, ms, where[case.id]))
    return EvalReport(
        mode=mode,
        k=k,
        results=tuple(results),
        slices=tuple(slices(results, k)),
        scope=tuple(sorted(scope or ())),
        evidence_in=tuple(sorted(set().union(*where.values()))),
        left_out=left_out,
        own_file=own_file,
    )


def compare(
    assistant,
    cases: list[GoldCase],
    modes: list[str],
    k: int = 10,
    docs: Sequence[str] | None = None,
    own_file: bool = False,
) -> list[EvalReport]:
    """`evaluate` once per mode, in the order given (the first is the primary report)."""
    return [evaluate(assistant, cases, k=k, mode=mode, docs=docs, own_file=own_file) for mode in modes]


# -- output --------------------------------------------------------------------------------------
def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def render_sets(reports: Sequence[EvalReport]) -> str:
    """One table: per mode, the headline figures of each gold set (dev, lockbox-A, lockbox-B, …)."""
    header = ["mode", "set", "n", "zh R@5", "zh MRR@10", "en R@5", "en MRR@10", "unans. flagged %",
              "false-flag %", "faithful %", "top-5 len", "top-5 ref-list %"]
    rows = []
    for rep in reports:
        for h in headlines(rep):
            rows.append([h.mode, h.set, str(h.n), _f(h.zh_recall_5), _f(h.zh_mrr_10), _f(h.en_recall_5),
                         _f(h.en_mrr_10), _pct(h.flagged), _pct(h.false_flag), _pct(h.faithful),
                         _num(h.mean_top5_chars), _pct(h.reference_top5)])
    return "\n".join(_table(header, rows)) + "\n"


def render_markdown(reports: Sequence[EvalReport]) -> str:
    """(a) modes side by side; (b) per-slice tables of the first report; then the misses."""
    if not reports:
        return "No evaluation was run.\n"
    first = reports[0]
    out = [f"## Retrieval evaluation ({first.overall.n} questions, k={first.k})", ""]
    if first.scope or first.evidence_in:
        asked = ", ".join(first.scope) if first.scope else "the whole corpus"
        if first.own_file:
            asked += " (a question naming its report: that report only)"
        located = ", ".join(first.evidence_in) if len(first.evidence_in) <= 3 else f"{len(first.evidence_in)} files"
        named = any(r.file for r in first.results) and not first.own_file
        out += [f"Asked of: {asked}. Evidence located in: {located}"
                + (" (a question naming its report: that report only)." if named else "."),
                ""]
    if first.left_out:
        out += [f"Not asked: {len(first.left_out)} question(s) about reports that are not among the files asked.", ""]
    if len(set_names(first.results)) > 1:
        out += ["### Per gold set", "", render_sets(reports).rstrip("\n"), "", "### All sets together", ""]
    header = ["mode"]
    for lang in ("zh", "en"):
        header += [f"{lang} R@1", f"{lang} R@5", f"{lang} R@10", f"{lang} MRR@10", f"{lang} nDCG@10"]
    header += ["hard R@5", "all-ev R@5", "faithful %", "top-5 len", "unans. flagged %",
               "false-flag %", "highlight %", "latency ms"]
    rows = []
    for rep in reports:
        row = [rep.mode]
        for lang in ("zh", "en"):
            m = rep.metrics(f"lang={lang}")
            row += [_f(m and m.recall_1), _f(m and m.recall_5), _f(m and m.recall_10),
                    _f(m and m.mrr_10), _f(m and m.ndcg_10)]
        hard = rep.metrics("difficulty=hard")
        o = rep.overall
        row += [_f(hard and hard.recall_5), _f(o.all_evidence_r5), _pct(o.faithful), _num(o.mean_top5_chars),
                _pct(o.flagged), _pct(o.false_flag), _pct(o.highlight), _num(o.latency_ms, 1)]
        rows.append(row)
    out += _table(header, rows)
    zh, en = first.metrics("lang=zh"), first.metrics("lang=en")
    out += [
        "",
        f"zh: {zh.answerable if zh else 0} answerable questions, en: {en.answerable if en else 0}; "
        f"all-evidence R@5 over {first.overall.multi_evidence} questions with two or more spans; "
        f"highlight % over answerable questions hit at rank 1 ({first.overall.highlight_n} for {first.mode}); "
        f"unanswerable: {first.overall.unanswerable}. Recall, MRR and nDCG are fractions; "
        f"`–` means no question to measure.",
        "",
        f"### Slices ({first.mode})",
        "",
    ]
    header = ["slice", "n", "ans.", "R@1", "R@3", "R@5", "R@10", "MRR@10", "nDCG@10", "all-ev R@5 (n)",
              "faithful %", "flagged %", "false-flag %", "highlight %", "latency ms"]
    rows = []
    for m in first.slices:
        rows.append([m.slice, str(m.n), str(m.answerable), _f(m.recall_1), _f(m.recall_3), _f(m.recall_5),
                     _f(m.recall_10), _f(m.mrr_10), _f(m.ndcg_10), f"{_f(m.all_evidence_r5)} ({m.multi_evidence})",
                     _pct(m.faithful), _pct(m.flagged), _pct(m.false_flag), _pct(m.highlight), _num(m.latency_ms, 1)])
    out += _table(header, rows)
    for name in set_names(first.results):
        if held_out(name):
            held = sum(r.set == name for r in first.results)
            out += ["", f"{name}: {held} held-out questions, reported in aggregate only (not listed below)."]
    for rep in reports:
        shown = [r for r in rep.results if not held_out(r.set)]
        misses = [r.id for r in shown if r.answerable and r.first_rank is None]
        unfaithful = [r.id for r in shown if not r.faithful]
        out += ["", f"{rep.mode}: not hit in the top {rep.k}: {', '.join(misses) or 'none'}"
                + (f"; unfaithful citations in: {', '.join(unfaithful)}" if unfaithful else "")]
    return "\n".join(out) + "\n"


def _rounded(obj: object) -> object:
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {key: _rounded(v) for key, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v) for v in obj]
    return obj


def report_json(reports: Sequence[EvalReport]) -> dict:
    """The object `rag eval --json` prints: per mode, its slices by name and every question's result."""
    return {
        "definitions": {
            "hit": "passage covers >= half of an evidence span's characters (same file)",
            "ndcg": "gain 1 per distinct evidence span at its first covering rank; IDCG over min(#spans, 10) "
                    "positions; capped at 1",
            "highlight": "rank-1 highlight overlaps a span by >= half of the shorter; rate over answerable "
                         "questions hit at rank 1",
            "faithful": "file_text[start:end] == text and line_start/line_end match (\\n, \\r\\n, \\r)",
            "rates": "fractions in [0, 1]; null when no question applies",
            "reference_top5": "share of top-5 passages that are mostly reference-list lines (rag.markup.is_link_dump)",
            "file": "a question naming its report has its evidence located in that file only",
        },
        "reports": [
            {
                "mode": rep.mode,
                "k": rep.k,
                "docs": list(rep.scope) or None,
                "evidence_in": list(rep.evidence_in),
                "questions": len(rep.results),
                "slices": {m.slice: _rounded(asdict(m)) for m in rep.slices},
                "sets": {h.set: _rounded(asdict(h)) for h in headlines(rep)},
                "left_out": len(rep.left_out),
                "own_file": rep.own_file,
                # The held-out half of a lockbox is reported in aggregate only.
                "results": [_rounded(asdict(r)) for r in rep.results if not held_out(r.set)],
            }
            for rep in reports
        ],
    }


__all__ = [
    "GoldCase", "GoldError", "QuestionResult", "Metrics", "EvalReport", "SourceFile", "Span", "Headline",
    "load_gold", "gold_set", "evaluate", "compare", "headlines", "render_markdown", "render_sets", "report_json",
    "covers", "highlight_matches", "evidence_ranks", "first_rank", "reciprocal_rank", "all_covered", "ndcg",
    "passage_problem", "score_question", "aggregate", "slices", "home_files", "held_out", "named_files",
    "case_files", "is_reference",
]
