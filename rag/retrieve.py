"""Ranking passages for a question: dense (FAISS or Milvus), lexical (BM25), and their fusion (RRF)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import config
from .chunking import Passage
from .index import Index
from .text import detect_lang, has_cjk

#: How many passages each retriever hands to fusion.
CANDIDATES = 50
#: How many Chinese terms an English question borrows from its lexical expansion for the dense side.
BRIDGE_TERMS = 8


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


def dense_scores(index: Index, qvec: np.ndarray, depth: int) -> dict[int, float]:
    """Best unit score per passage among the `depth` nearest units (a passage or one of its sentences);
    the index answers (FAISS, or the Milvus store: `rag.store`)."""
    return index.dense_scores(qvec, depth)


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
    r"|\bfull (?:name|form|title)\b|\bwhat (?:is|are|was|were) (?:the )?[A-Z0-9]{2,}",
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


def bridge_terms(tokens: list[str], vocabulary, n: int = BRIDGE_TERMS) -> list[str]:
    """Chinese words of an English question's lexical expansion (report terms, CC-CEDICT) that the
    corpus uses, distinct, in expansion order.

    e5 matches English to Chinese only loosely; appending these words to the question moves its
    vector toward the passages that use them (README, "Choices": English dense Recall@5 0.74 -> 0.94).
    """
    out: list[str] = []
    for t in tokens:
        if len(t) >= 2 and t in vocabulary and has_cjk(t) and t not in out and not any(t in o for o in out):
            out.append(t)
    return out[:n]


def dense_query(question: str, tokens: list[str], vocabulary, extra: Sequence[str] = ()) -> str:
    """What the dense side embeds: the question, plus bridge terms when it is English
    (:func:`rag.text.detect_lang`), plus `extra` words (the countries its capitals stand for)."""
    terms = [] if detect_lang(question) == "zh" else bridge_terms(tokens, vocabulary)
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


def search(index: Index, question: str, k: int, mode: str, encoder=None, *, bridge: bool = True) -> list[Hit]:
    """The k best passages for a prepared question text; `encoder` is needed unless mode is bm25.

    `bridge=False` turns off the bridge terms of English questions (`dense_query`): only for
    measuring what they bring (rag.evaluate's "-nobridge" rows)."""
    config.check_k(k)
    config.check_mode(mode)
    from .expand import expand_query

    depth = max(CANDIDATES, k)
    tokens = expand_query(question, index.term_pairs)
    extra = metonyms(question, index.lexical.vocab) if bridge else []
    if extra:
        from .tokens import tokenize

        tokens = tokens + [t for w in extra for t in tokenize(w)]
    qvec = None
    dense: dict[int, float] = {}
    if mode in ("dense", "hybrid"):
        qtext = dense_query(question, tokens, index.lexical.vocab, extra) if bridge else question
        qvec = encoder.encode_queries([qtext])[0]
        dense = dense_scores(index, qvec, depth * 4)
    lexical: list[tuple[int, float]] = []
    if mode in ("bm25", "hybrid"):
        lexical = index.lexical.search(tokens, depth)

    dense_rank = sorted(dense, key=lambda p: (-dense[p], p))[:depth]
    if mode == "dense":
        ranked = [(p, dense[p]) for p in dense_rank]
    elif mode == "bm25":
        ranked = [(p, float(s)) for p, s in lexical]
    else:
        rankings = [dense_rank, [p for p, _ in lexical]]
        defining = definitions(index, question)
        if defining:
            rankings.append(defining)
        ranked = fuse(rankings)
    hits = []
    for rank, (pos, score) in enumerate(ranked[:k], start=1):
        sentences = rank_sentences(index, pos, qvec, tokens)
        hits.append(
            Hit(
                passage=index.passages[pos],
                score=float(score),
                rank=rank,
                sentences=sentences,
            )
        )
    return hits
