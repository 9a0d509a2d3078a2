"""Ranking passages for a question: dense (FAISS or Milvus), lexical (BM25), and their fusion.

Fusion is by score (`fuse_scores`): each retriever's candidate scores are standardised (z-scores
over its own candidate list) and averaged with fixed weights, so a retriever that is sure of one
passage (a score far above its other candidates) can outvote a weak first place of the other.
Reciprocal rank fusion (`fuse`) keeps only ranks, and ranked a passage that both retrievers put
second above one that either put clearly first (README, "Choices": hybrid MRR@10 on dev, English
0.809 -> 0.882, lockbox A Chinese 0.841 -> 0.942). RRF stays as the "hybrid-rrf" measurement
variant of rag.evaluate. In a library, each document among the best candidates then ranks its
own passages as an index of it alone would, and each passage's score becomes the mean of its
library-wide and its within-document score (`within_documents`); a question naming a year ranks
lower the documents that never mention it (`undated_last`). After fusion, a question asking for a
number or a date gives a small bonus to the passages whose best sentence states one
(`ANSWER_TYPE_BOOST`).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import config
from .chunking import MATTER_KINDS, Passage
from .index import Index
from .text import detect_lang, has_cjk

if TYPE_CHECKING:  # pragma: no cover
    from .expand import SenseGroup

#: How many passages each retriever hands to fusion.
CANDIDATES = 50
#: How many Chinese terms an English question borrows from its lexical expansion for the dense side.
BRIDGE_TERMS = 8
#: What a cover-page or back-matter passage (rag.chunking.MATTER_KINDS) loses in hybrid fusion, in
#: z-score units: it shares the report's title words with many questions (English ones above all:
#: its title is in English) but states nothing, so it ranks below body text that matches as well.
MATTER_PENALTY = 1.0
#: Weight of a passage's document in its dense score: cosine(question, the document's centroid)
#: is added to the passage's own best unit similarity (`dense_scores`). Within one document it
#: adds the same amount to every passage, so a single report (or a scope of one document) ranks
#: exactly as without it; in a library it lets the report a question is about outrank other
#: reports' generic passages (README, "In a library").
FILE_PRIOR = 1.0
#: What a passage gains in hybrid fusion, in z-score units, when the question asks for a number, a
#: share, a date or a day (`rag.abstain.expected_answer`) and the passage's sentence that best
#: matches the question states one (`rag.abstain.states`): of two passages on the question's topic,
#: the one whose closest sentence gives a figure or a date is more likely the answer (README,
#: "Choices": dev English MRR@10 0.897 -> 0.899, lockbox A English R@5 0.937 -> 0.949, MRR 0.771
#: -> 0.772; half B unchanged). Small on purpose: the not-found check (`rag.abstain.unstated`)
#: reads the three best passages for a figure, and at 0.3-0.7 the boost lifted figure-stating
#: passages into them for unanswerable questions (dev flagged 87.5% -> 75% / 62.5%). Only the
#: ANSWER_TYPE_CANDIDATES best fused passages are read.
ANSWER_TYPE_BOOST = 0.2
ANSWER_TYPE_CANDIDATES = 10
#: How many documents, the nearest to an English question (by centroid), an English question's
#: bridge terms are chosen from in a library (`near_vocabulary`).
NEAR_FILES = 5
#: Weight, in fused z-score units, of a passage's document in hybrid fusion: the document's
#: similarity to the question standardised over the library's documents (`document_prior`).
FUSED_FILE_PRIOR = 0.2
#: Weight of a passage's standing within its own document in hybrid fusion over a library
#: (`within_documents`): the fused z-score a one-document index of that document gives it, averaged
#: with its library-wide fused score. 1.0: as much as the library-wide view (README, "In a library").
WITHIN_DOC_WEIGHT = 1.0
#: Which documents are ranked on their own terms (`within_documents`): those of the best
#: WITHIN_DOC_FROM passages of the library-wide fusion.
WITHIN_DOC_FROM = 20
#: What a passage loses in hybrid fusion, in z-score units, when the question names a year (or a
#: month of a year) that some documents of a library mention and the passage's document never does
#: (`undated_last`, `rag.abstain.Grounder.dated`): a question about a year's events is about the reports that speak of that
#: year. One unit, as MATTER_PENALTY: such a passage ranks below one that matches as well, above
#: it only when far ahead (library, unscoped, hybrid: English MRR@10 dev 0.841 -> 0.870, lockbox
#: A 0.654 -> 0.669, B 0.740 -> 0.762; R@5 and Chinese unchanged).
UNDATED_PENALTY = 1.0


@dataclass(frozen=True)
class Hit:
    """A ranked passage with its sentences (absolute spans), best match to the question first."""

    passage: Passage
    score: float
    rank: int
    sentences: tuple[tuple[int, int], ...] = ()

    @property
    def highlight(self) -> tuple[int, int] | None:
        """The sentence that best matches the question."""
        return self.sentences[0] if self.sentences else None


def fuse(rankings: list[list[int]], k: int = config.RRF_K, weights: list[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal rank fusion over 1-based ranks; an item listed twice in one ranking counts once."""
    scores: dict[int, float] = {}
    for r, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[r]
        seen: set[int] = set()
        rank = 0
        for item in ranking:
            if item in seen:
                continue
            seen.add(item)
            rank += 1
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def fuse_scores(lists: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float]) -> list[tuple[int, float]]:
    """Score fusion: each list's scores as z-scores over that list, then their weighted mean.

    `lists` are (item, score) candidates of each retriever, best first; an item missing from a list
    gets that list's lowest z-score (it ranked below every candidate there). An empty list (BM25
    found no shared word) takes no part, so the other decides alone. A list whose scores are all
    equal gives every candidate 0. Ties are broken by item, so the order is deterministic.
    """
    parts: list[tuple[dict[int, float], float, float]] = []
    for pairs, w in zip(lists, weights):
        if not pairs or w <= 0:
            continue
        values = np.asarray([s for _, s in pairs], dtype=np.float64)
        mean, sd = float(values.mean()), float(values.std())
        z: dict[int, float] = {}
        for item, score in pairs:
            z.setdefault(item, (score - mean) / sd if sd > 0 else 0.0)
        parts.append((z, min(z.values()), float(w)))
    if not parts:
        return []
    total = sum(w for _, _, w in parts)
    items = dict.fromkeys(item for z, _, _ in parts for item in z)
    fused = {item: sum(w * z.get(item, floor) for z, floor, w in parts) / total for item in items}
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class FileCentroids:
    """Each document's centroid (`rag.store.centroid`) and, per passage position, its document's row."""

    matrix: np.ndarray  # float32 (documents, dim), L2-normalised
    file_of: np.ndarray  # int64 (passages,), passage position -> row of `matrix`
    sources: tuple[str, ...]  # row of `matrix` -> source, in passage order


_CENTROIDS: dict[int, tuple[weakref.ref, FileCentroids]] = {}


def file_centroids(index: Index) -> FileCentroids:
    """The documents' centroids of a loaded index (FAISS or Milvus: `index.file_centroids()`),
    laid out by passage position; computed once per index object."""
    key = id(index)
    cached = _CENTROIDS.get(key)
    if cached is not None and cached[0]() is index:
        return cached[1]
    by_source = index.file_centroids()
    order = sorted(index.ranges, key=lambda s: index.ranges[s][0])
    file_of = np.zeros(len(index.passages), dtype=np.int64)
    for row, source in enumerate(order):
        lo, hi = index.ranges[source][:2]
        file_of[lo:hi] = row
    dim = len(next(iter(by_source.values()))) if by_source else 0
    matrix = np.stack([by_source[s] for s in order]).astype(np.float32) if order else np.zeros((0, dim), np.float32)
    found = FileCentroids(matrix, file_of, tuple(order))
    _CENTROIDS[key] = (weakref.ref(index, lambda _r, k=key: _CENTROIDS.pop(k, None)), found)
    return found


def dense_scores(index: Index, qvec: np.ndarray, depth: int, file_prior: float = FILE_PRIOR) -> dict[int, float]:
    """Best unit score per passage among the `depth` nearest units (a passage or one of its
    sentences; the index answers: FAISS, or the Milvus store), plus `file_prior` times the
    similarity of the question to the passage's document (its centroid, `file_centroids`).

    The document term is what a library needs: other reports' generic passages ("建议持续关注…",
    a limitations paragraph) sit near many questions (hubs), while the report a question is about
    is near it as a whole. Library, hybrid, dev English R@5 0.74 -> 0.84, MRR 0.623 -> 0.660;
    lockbox A Chinese R@5 0.808 -> 0.885 (README, "In a library"). With one document it adds the
    same to every passage and changes no ranking."""
    best = index.dense_scores(qvec, depth)
    if file_prior and best and len(index.ranges) > 1:
        cents = file_centroids(index)
        to_file = cents.matrix @ np.asarray(qvec, dtype=np.float32)
        best = {p: s + file_prior * float(to_file[cents.file_of[p]]) for p, s in best.items()}
    return best


class NearVocabulary:
    """The words (whole BM25 terms) that some passage of the chosen documents uses: a container
    standing in for `index.lexical.vocab` where bridge terms are chosen (`bridge_terms`)."""

    def __init__(self, index: Index, spans: Sequence[tuple[int, int]]) -> None:
        self.index = index
        self.spans = tuple(spans)  # passage position ranges [lo, hi) of the chosen documents
        self._seen: dict[str, bool] = {}

    def __contains__(self, term: object) -> bool:
        if not isinstance(term, str) or term not in self.index.lexical.vocab:
            return False
        if term not in self._seen:
            held = self.index.lexical.postings(term)  # sorted positions
            self._seen[term] = any(
                (i := int(np.searchsorted(held, lo))) < len(held) and int(held[i]) < hi for lo, hi in self.spans
            )
        return self._seen[term]


def near_vocabulary(index: Index, qvec: np.ndarray, n: int = NEAR_FILES) -> NearVocabulary:
    """The vocabulary of the `n` documents whose centroids are nearest to the question vector.

    An English word's dictionary renderings are many, and in a library some other report uses
    each of them: bridge terms chosen from the library's whole vocabulary pull the question's
    vector toward the reports that use a word's off-senses. The documents the question is near
    as a whole say which renderings are the ones it needs (with one document: its whole vocabulary,
    the same bridge terms as before)."""
    cents = file_centroids(index)
    sims = cents.matrix @ np.asarray(qvec, dtype=np.float32)
    nearest = np.argsort(-sims, kind="stable")[:n]
    return NearVocabulary(index, [tuple(index.ranges[cents.sources[int(i)]][:2]) for i in nearest])


def document_prior(index: Index, ranked: list[tuple[int, float]], qvec: np.ndarray,
                   weight: float = FUSED_FILE_PRIOR) -> list[tuple[int, float]]:
    """Fused scores plus `weight` times the z-score of the passage's document's similarity to the
    question (its centroid, over all the library's documents), re-sorted.

    The dense side already carries the document (`dense_scores`); BM25 does not, and a rare word
    of another report can carry that report's passage to the top. The term counts in fusion units,
    so it weighs as much against BM25's pick as against dense's. With one document (a single
    report, a one-document scope) it is the same for every passage and changes nothing."""
    if not weight or not ranked or len(index.ranges) <= 1:
        return ranked
    cents = file_centroids(index)
    sims = (cents.matrix @ np.asarray(qvec, dtype=np.float32)).astype(np.float64)
    sd = float(sims.std())
    if sd <= 0:
        return ranked
    z = (sims - float(sims.mean())) / sd
    out = [(p, s + weight * float(z[cents.file_of[p]])) for p, s in ranked]
    return sorted(out, key=lambda kv: (-kv[1], kv[0]))


def _best_first(scores: dict[int, float], n: int) -> list[tuple[int, float]]:
    """The `n` best (position, score) pairs of `scores`, best first, ties by position: a dense
    search's candidate list for fusion."""
    return [(p, scores[p]) for p in sorted(scores, key=lambda p: (-scores[p], p))[:n]]


def within_documents(index: Index, ranked: list[tuple[int, float]], qvec: np.ndarray, tokens: list[str],
                     weights: dict[str, float] | None, dense_weight: float,
                     weight: float = WITHIN_DOC_WEIGHT, top: int = WITHIN_DOC_FROM) -> list[tuple[int, float]]:
    """The weighted mean of each passage's library-wide fused score (weight 1) and its fused score
    within its own document (`weight`), for the documents of the `top` best passages, re-sorted (a
    second stage: the library chooses documents and candidates, each document ranks its own
    passages). A mean, not a sum: the result stays in fused z-score units, the units of the
    additive terms that follow (`document_prior`, ANSWER_TYPE_BOOST, MATTER_PENALTY).

    Within a document, each retriever ranks its passages as an index of that document alone would
    (BM25 with the document's own IDF: `search_in`; exact dense search over its units:
    `dense_scores_in`), and the two lists are fused as `fuse_scores` fuses the library's. In a
    library the report a question is about loses its answer two ways: library-wide IDF and
    z-scores over a candidate list filled with other reports' passages reorder its own passages
    (BM25 scores the report's recurring words by other reports' use of them), and its answer,
    missing from one library list, takes that list's lowest z-score. The within-document score
    gives back the report's own order, and brings in its passages that the library's lists missed;
    another report's passage that is only a middling match within its own report loses ground.
    Documents' scores stay comparable: the library-wide term decides between documents as before.
    A passage of a ranked document outside its document's lists takes the document's lowest
    fused score; one outside the library's lists, the library's lowest; a passage of a document
    not ranked on its own (not among the `top`, or with no match in it) counts 0 within it (a
    candidate list's mean z-score). With one document it is not applied: the within-document score is then the
    fused score itself."""
    if not weight or not ranked or len(index.ranges) <= 1:
        return ranked
    cents = file_centroids(index)
    chosen = list(dict.fromkeys(int(cents.file_of[p]) for p, _ in ranked[:top]))
    depth = CANDIDATES
    within: dict[int, float] = {}
    lowest: dict[int, float] = {}
    for row in chosen:
        source = cents.sources[row]
        lo, hi = index.ranges[source][:2]
        dense = index.dense_scores_in(qvec, depth * 4, source)
        lexical = index.lexical.search_in(tokens, depth, (lo, hi), weights)
        fused = fuse_scores([_best_first(dense, depth), lexical], [dense_weight, 1.0 - dense_weight])
        if fused:
            within.update(fused)
            lowest[row] = fused[-1][1]
    library = dict(ranked)
    floor = ranked[-1][1]
    out: dict[int, float] = {}
    for p in dict.fromkeys([*library, *within]):
        row = int(cents.file_of[p])
        own = within.get(p, lowest.get(row, 0.0))
        out[p] = (library.get(p, floor) + weight * own) / (1.0 + weight)
    return sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))


def undated_last(index: Index, ranked: list[tuple[int, float]], dated: frozenset[str] | None,
                 penalty: float = UNDATED_PENALTY) -> list[tuple[int, float]]:
    """`ranked` with the passages of documents outside `dated` `penalty` lower, re-sorted.

    `dated` are the sources of the documents that mention every year (and month of a year) the
    question names (`rag.abstain.Grounder.dated`; None: the question names none, or every document
    mentions them). A question about 2022's summit is about the reports that speak of 2022; another
    report's passage on a later summit matches its words as well. With one document nothing changes."""
    if not dated or not penalty or not ranked or len(index.ranges) <= 1:
        return ranked
    cents = file_centroids(index)
    rows = {i for i, source in enumerate(cents.sources) if source in dated}
    if not rows or len(rows) == len(cents.sources):
        return ranked
    out = [(p, s if int(cents.file_of[p]) in rows else s - penalty) for p, s in ranked]
    return sorted(out, key=lambda kv: (-kv[1], kv[0]))


def rank_sentences(index: Index, position: int, qvec: np.ndarray | None, tokens: list[str] | None = None) -> tuple[tuple[int, int], ...]:
    """A passage's sentences, best match to the question first: by vector, else by shared terms.

    The first is the highlight; the next ones let the not-found check look past it.
    """
    passage = index.passages[position]
    spans = passage.sentences
    if len(spans) <= 1:
        return tuple(spans)
    if qvec is not None:
        sentence, vectors = index.sentence_vectors(position)
        if len(sentence):
            sims = vectors @ qvec
            order = [int(sentence[i]) for i in np.argsort(-sims, kind="stable")]
            rest = sorted(set(range(len(spans))) - set(order))
            return tuple(spans[i] for i in order + rest)
    if tokens:
        from .tokens import tokenize

        wanted = set(tokens)
        overlap = [len(wanted & set(tokenize(passage.text[s - passage.start : e - passage.start]))) for s, e in spans]
        return tuple(spans[i] for i in sorted(range(len(spans)), key=lambda i: -overlap[i]))
    return tuple(spans)


# Questions about what a term stands for or means (not any "是什么": that asks about anything).
_ASKS_EXPANSION = re.compile(
    r"缩写|全称|全名|代表什么|指的?是什么|指什么|什么意思|\bstands? for\b|\babbreviat|\bacronym|\bshort for\b"
    r"|\bfull (?:name|form|title)\b|\bwhat (?:is|are|was|were) (?:the )?(?-i:[A-Z0-9]{2,}s?\b)",
    re.I,
)
_ACRONYM = re.compile(r"(?<![A-Za-z0-9])([A-Z][A-Za-z]*[A-Z][A-Za-z0-9]*|[0-9]+[A-Z]s?|[A-Z]+[0-9]+)(?![A-Za-z0-9])")


def definitions(index: Index, question: str) -> list[int]:
    """Passages that spell out an acronym the question asks about, first definition first.

    Only for questions that ask what an acronym is ("DOC是哪份文件的缩写", "What does IPEF stand
    for?"), and only acronyms the report pairs with a Chinese term ("《南海各方行为宣言》(DOC)"):
    the passages holding both, in reading order, since a report defines a term at first use.
    """
    if not _ASKS_EXPANSION.search(question):
        return []
    from .tokens import tokenize

    out: list[int] = []
    for m in _ACRONYM.finditer(question):
        for token in tokenize(m.group(1)):
            terms = index.term_pairs.get(token)
            if not terms:
                continue
            for pos in index.lexical.postings(token):
                text = index.passages[int(pos)].text
                if int(pos) not in out and any(t in text for t in terms):
                    out.append(int(pos))
    return out


def bridge_terms(terms: list[str], vocabulary, n: int = BRIDGE_TERMS) -> list[str]:
    """Chinese words of an English question's lexical expansion (report terms, CC-CEDICT:
    `rag.expand.sense_groups`) that the corpus uses, distinct, in expansion order.

    e5 matches English to Chinese only loosely; appending these words to the question moves its
    vector toward the passages that use them (README, "Choices": English dense Recall@5 0.74 -> 0.94).
    Whole terms, not BM25 tokens: the character bigrams of a long rendering (东南亚国家联盟 ->
    东南, 南亚, 亚国, 家联 …) are in the vocabulary too, and took the eight places.
    """
    out: list[str] = []
    for t in terms:
        if len(out) >= n:
            break  # a vocabulary may ask the store (`near_vocabulary`): no look-up past the n-th
        if len(t) >= 2 and has_cjk(t) and t not in out and not any(t in o for o in out) and t in vocabulary:
            out.append(t)
    return out


def dense_query(question: str, terms: list[str], vocabulary, extra: Sequence[str] = ()) -> str:
    """What the dense side embeds: the question, plus bridge terms (from its expansion `terms`)
    when it is English (:func:`rag.text.detect_lang`), plus `extra` words (the countries its
    capitals stand for)."""
    terms = [] if detect_lang(question) == "zh" else bridge_terms(terms, vocabulary)
    terms = list(dict.fromkeys([*terms, *extra]))
    return question + " " + " ".join(terms) if terms else question


def metonyms(question: str, vocabulary) -> list[str]:
    """Chinese words (that the corpus uses) for the countries whose capitals a question names:
    a capital often stands for its government ("Jakarta's maritime vision", "科伦坡与伊斯兰堡"),
    and the report names the country instead. Capitals are read from CC-CEDICT (`rag.names`)."""
    from .names import capitals_in

    out: list[str] = []
    for word in capitals_in(question):
        if word in vocabulary and word not in out:
            out.append(word)
    return out


def without_capitals(senses: list[SenseGroup]) -> list[SenseGroup]:
    """An English question's sense groups (`rag.expand.sense_groups`) without those that only render
    a capital city (Beijing -> 北京, 北京市), for a library, where the question's capitals stand for
    their governments (`metonyms` brings in the countries): other reports name the city itself
    (北京时间 "Beijing time", a city's weather), and its renderings drew their passages in. Library,
    unscoped, English R@5 / MRR@10: A 0.772 / 0.678 -> 0.785 / 0.682, B 0.897 / 0.787 -> 0.897 / 0.796,
    dev unchanged. In one report the city's renderings stay (README, "Choices")."""
    from .names import proper_nouns

    table = proper_nouns()
    return [g for g in senses if not (g.terms and all(t in table and table[t].capital_of for t in g.terms))]


def search(index: Index, question: str, k: int, mode: str, encoder=None, *, bridge: bool = True,
           fusion: str = "score", synonyms: bool | None = None, senses: list[SenseGroup] | None = None,
           dated: frozenset[str] | None = None) -> list[Hit]:
    """The k best passages for a prepared question text; `encoder` is needed unless mode is bm25.

    `bridge=False` turns off the bridge terms of English questions (`dense_query`),
    `fusion="rrf"` fuses hybrid rankings by reciprocal rank instead of by score: both only for
    measuring what a lever brings (rag.evaluate's "-nobridge" and "-rrf" rows).

    `synonyms` weighs an English word's dictionary renderings as one BM25 term
    (`rag.bm25.LexicalIndex.group_weights`). By default (None) only in a library (an index of more
    than one document): there some other report uses each rare off-sense of a word, and scores
    with it as with a rare, telling word (library, hybrid, on top of the document priors: dev
    English MRR 0.841 -> 0.842, lockbox A English R@5 0.734 -> 0.747, MRR 0.645 -> 0.655). In one
    report they cost an English question's R@5 on lockbox half B (README, "Choices"), so a single
    report, and a one-document scope, rank without them. True forces them (rag.evaluate's
    "-synonyms" row measures them on a single report); False turns them off.

    `dated`: the sources of the documents that mention the years the question names
    (`rag.abstain.Grounder.dated`); in hybrid score fusion, other documents' passages rank lower
    (`undated_last`).

    `senses` is `rag.expand.sense_groups(question, index.term_pairs)` when the caller has it already
    (`rag.assistant` computes it once per question, for the search and the matched terms)."""
    config.check_k(k)
    config.check_mode(mode)
    from .expand import english_dates, expand_query, sense_groups, without_document_words
    from .tokens import tokenize

    sentences: dict[int, tuple[tuple[int, int], ...]] = {}  # rank_sentences, once per passage

    depth = max(CANDIDATES, k)
    if senses is None:
        senses = sense_groups(question, index.term_pairs)
    extra = metonyms(question, index.lexical.vocab) if bridge else []
    if extra and len(index.ranges) > 1 and detect_lang(question) == "en":
        senses = without_capitals(senses)
    tokens = expand_query(question, index.term_pairs, groups=senses)
    groups = [g.terms for g in senses]
    terms = [t for g in senses for t in g.terms]
    if bridge and detect_lang(question) == "en":
        # "December 2025" as the reports write it, 2025年12月 (`rag.expand.english_dates`), for both sides.
        extra = [*extra, *(d for d in english_dates(question) if d not in extra)]
    if extra:
        tokens = tokens + [t for w in extra for t in tokenize(w)]
        groups += [(w,) for w in extra]
    qvec = None
    dense: dict[int, float] = {}
    if mode in ("dense", "hybrid"):
        qtext = dense_query(question, terms, index.lexical.vocab, extra) if bridge else question
        qvec = encoder.encode_queries([qtext])[0]
        if bridge and len(index.ranges) > 1 and detect_lang(question) == "en":
            # In a library: bridge terms from the documents the question is near (`near_vocabulary`),
            # and the question without the words it names the document with ("the report": in a
            # library it names no one report, and drew the question toward every report's passages
            # about itself; English R@5 / MRR@10 A 0.759 / 0.670 -> 0.772 / 0.678, B 0.885 / 0.762 -> 0.897 /
            # 0.787, dev MRR 0.870 -> 0.863; one fewer unanswerable question of half B flagged).
            near = dense_query(without_document_words(question), terms, near_vocabulary(index, qvec), extra)
            if near != qtext:
                qvec = encoder.encode_queries([near])[0]
        dense = dense_scores(index, qvec, depth * 4)
    lexical: list[tuple[int, float]] = []
    if mode in ("bm25", "hybrid"):
        if synonyms is None:
            synonyms = len(index.ranges) > 1
        weights = index.lexical.group_weights((g, [t for term in g for t in tokenize(term)]) for g in groups) if synonyms else None
        lexical = index.lexical.search(tokens, depth, weights)

    dense_ranked = _best_first(dense, depth)
    if mode == "dense":
        ranked = dense_ranked
    elif mode == "bm25":
        ranked = [(p, float(s)) for p, s in lexical]
    elif fusion == "rrf":
        rankings = [[p for p, _ in dense_ranked], [p for p, _ in lexical]]
        defining = definitions(index, question)
        if defining:
            rankings.append(defining)
        ranked = fuse(rankings)
    else:
        w = config.DENSE_WEIGHT[detect_lang(question)]
        ranked = fuse_scores([dense_ranked, lexical], [w, 1.0 - w])
        ranked = within_documents(index, ranked, qvec, tokens, weights, w)
        ranked = document_prior(index, ranked, qvec)
        ranked = undated_last(index, ranked, dated)
        ranked = _stated_first(index, question, ranked, qvec, tokens, sentences)
        ranked = _matter_last(index, ranked)
        ranked = _definition_first(ranked, definitions(index, question))
    hits = []
    for rank, (pos, score) in enumerate(ranked[:k], start=1):
        if pos not in sentences:
            sentences[pos] = rank_sentences(index, pos, qvec, tokens)
        hits.append(
            Hit(
                passage=index.passages[pos],
                score=float(score),
                rank=rank,
                sentences=sentences[pos],
            )
        )
    return hits


def _stated_first(index: Index, question: str, ranked: list[tuple[int, float]], qvec: np.ndarray | None,
                  tokens: list[str], sentences: dict[int, tuple[tuple[int, int], ...]]) -> list[tuple[int, float]]:
    """`ranked` with ANSWER_TYPE_BOOST added to each of its ANSWER_TYPE_CANDIDATES best passages
    whose best-matching sentence states what the question asks for (a figure, a share, a date or
    a day: `rag.abstain.expected_answer`), re-sorted; unchanged for any other question.
    `sentences` keeps each passage's ranked sentences (`rank_sentences`) for the hits."""
    from .abstain import expected_answer, states

    want = expected_answer(question, detect_lang(question))
    if want is None or not ranked:
        return ranked
    out = list(ranked)
    for i, (pos, score) in enumerate(ranked[:ANSWER_TYPE_CANDIDATES]):
        if pos not in sentences:
            sentences[pos] = rank_sentences(index, pos, qvec, tokens)
        passage = index.passages[pos]
        s, e = sentences[pos][0] if sentences[pos] else (passage.start, passage.end)
        if states(passage.text[s - passage.start : e - passage.start], want.kind):
            out[i] = (pos, score + ANSWER_TYPE_BOOST)
    return sorted(out, key=lambda kv: (-kv[1], kv[0]))


def _matter_last(index: Index, ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """`ranked` with cover and back-matter passages MATTER_PENALTY lower, re-sorted."""
    if not any(index.passages[p].kind in MATTER_KINDS for p, _ in ranked):
        return ranked
    out = [(p, s - MATTER_PENALTY if index.passages[p].kind in MATTER_KINDS else s) for p, s in ranked]
    return sorted(out, key=lambda kv: (-kv[1], kv[0]))


def _definition_first(ranked: list[tuple[int, float]], defining: list[int]) -> list[tuple[int, float]]:
    """For a question asking what an acronym is: the passage where the report first spells it out
    goes first (a report defines a term at first use), with the best score; the rest keep their order."""
    if not defining or not ranked:
        return ranked
    first = defining[0]
    top = ranked[0][1]
    return [(first, top)] + [(p, s) for p, s in ranked if p != first]
