"""BM25 over a report's passages: :class:`LexicalIndex`.

A plain BM25 (Lucene idf and scoring, k1=1.5, b=0.75: the same scores as bm25s's default method,
checked against bm25s in the tests) over pre-computed per-term score lists, saved as ``.npz``
(``allow_pickle=False``) plus JSON. bm25s itself is not used at run time: its import pulls in
scipy (~160 ms), and scoring ~500 passages needs nothing but numpy.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .tokens import TOKEN_MODE, tokenize

__all__ = ["VERSION", "K1", "B", "LexicalIndex"]

#: Bump when output changes (scores, the stored layout): the index records this number.
VERSION = 2

K1 = 1.5
B = 0.75
#: `params["length_norm"]` of an index whose passages are length-normalised per source file.
LENGTH_NORM_GROUP = "per-file"
_FORMAT = "rag-lexical-bm25"
_FORMAT_VERSION = 1  # the file layout load() reads
_ARRAYS = "bm25.npz"
_META = "bm25.json"


def idf(n_docs: int, df: int) -> float:
    """The (Lucene) inverse document frequency of a term held by ``df`` of ``n_docs`` passages."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def synonym_weights(
    groups: Iterable[tuple[Sequence[str], Sequence[str]]], n_docs: int,
    union_df: Callable[[Sequence[str]], int], token_df: Callable[[str], int],
) -> dict[str, float]:
    """The weights of `LexicalIndex.group_weights`, given how to count the passages holding any of
    a group's renderings (`union_df`) and those holding one token (`token_df`): the one rule both
    stores apply (`rag.store.milvus` counts from Milvus postings)."""
    out: dict[str, float] = {}
    for renderings, tokens in groups:
        df = union_df(renderings)
        if df == 0:
            continue
        cap = idf(n_docs, df)
        for t in tokens:
            own_df = token_df(t)
            if own_df <= 0:
                continue
            own = idf(n_docs, own_df)
            w = min(1.0, cap / own) if own > 0 else 1.0
            out[t] = min(w, out.get(t, 1.0))
    return {t: w for t, w in out.items() if w < 1.0}


class LexicalIndex:
    """BM25 over a list of passages, scores pre-computed per term (a CSC-like layout): for term
    ``t`` the passages ``doc_ids[indptr[t]:indptr[t+1]]`` score ``scores[indptr[t]:indptr[t+1]]``."""

    def __init__(
        self,
        vocab: dict[str, int],
        indptr: np.ndarray,
        doc_ids: np.ndarray,
        scores: np.ndarray,
        n_docs: int,
        params: dict | None = None,
    ) -> None:
        self.vocab = vocab
        self.indptr = indptr
        self.doc_ids = doc_ids
        self.scores = scores
        self.n_docs = int(n_docs)
        self.params = dict(params or {"k1": K1, "b": B})

    def __len__(self) -> int:
        return self.n_docs

    @classmethod
    def build(
        cls, texts: list[str], *, k1: float = K1, b: float = B, tokenizer=None, groups: Sequence[Hashable] | None = None
    ) -> LexicalIndex:
        """Index ``texts`` with :func:`tokenize` (or ``tokenizer``); a passage's position in
        ``texts`` is its id in search results; ``groups`` as in `from_counts`."""
        tok = tokenizer or tokenize
        index = cls.from_counts([Counter(tok(t)) for t in texts], k1=k1, b=b, groups=groups)
        index.params["tokens"] = TOKEN_MODE if tokenizer is None else "custom"
        return index

    @classmethod
    def from_counts(
        cls, docs: list[Mapping[str, int]], *, k1: float = K1, b: float = B, groups: Sequence[Hashable] | None = None
    ) -> LexicalIndex:
        """Index passages given as token counts (what a store keeps per file), so the corpus-wide
        statistics (IDF, average length) are recomputed without tokenizing again.

        ``groups`` (one key per passage: its source file) makes length normalisation per group: a
        passage's length is compared with the mean passage length of its own file, not of the
        whole corpus. Files are cut very differently (the CISS report's passages average 245
        tokens, the library's Markdown reports' 52), and against a corpus-wide mean every passage
        of a long-passage report is penalised as "long" (dev set, BM25 over the report + 80
        library reports: English R@5 0.48 -> 0.76, MRR@10 0.382 -> 0.608; Chinese 0.92 -> 0.94).
        With one file it is exactly the corpus-wide normalisation. IDF stays corpus-wide.
        """
        n = len(docs)
        lengths = np.array([sum(c.values()) for c in docs], dtype=np.float64)
        avgdl = float(lengths.mean()) if n and lengths.sum() > 0 else 1.0
        mean_len = np.full(n, avgdl)
        if groups is not None:
            if len(groups) != n:
                raise ValueError("groups must give one key per passage")
            members: dict[Hashable, list[int]] = {}
            for i, g in enumerate(groups):
                members.setdefault(g, []).append(i)
            for idx in members.values():
                sub = lengths[np.asarray(idx)]
                mean_len[idx] = float(sub.mean()) if sub.sum() > 0 else 1.0
        postings: dict[str, list[tuple[int, int]]] = {}
        for d, counts in enumerate(docs):
            for term, tf in counts.items():
                postings.setdefault(term, []).append((d, tf))
        vocab = {term: i for i, term in enumerate(sorted(postings))}
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        doc_ids: list[int] = []
        scores: list[float] = []
        for term, i in vocab.items():
            plist = postings[term]
            df = len(plist)
            term_idf = idf(n, df)
            for d, tf in plist:
                norm = k1 * (1.0 - b + b * lengths[d] / mean_len[d])
                doc_ids.append(d)
                scores.append(term_idf * tf / (tf + norm))
            indptr[i + 1] = len(doc_ids)
        return cls(
            vocab,
            indptr,
            np.asarray(doc_ids, dtype=np.int32),
            np.asarray(scores, dtype=np.float32),
            n,
            {"k1": k1, "b": b, "tokens": TOKEN_MODE, "length_norm": LENGTH_NORM_GROUP if groups is not None else "corpus"},
        )

    def score(self, query_tokens: list[str], weights: Mapping[str, float] | None = None) -> np.ndarray:
        """BM25 score of every passage (a repeated query token counts once per repetition);
        ``weights`` scales a token's scores (default 1: see :meth:`group_weights`)."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for term, qtf in Counter(query_tokens).items():
            i = self.vocab.get(term)
            if i is None:
                continue
            w = qtf * (weights.get(term, 1.0) if weights else 1.0)
            lo, hi = self.indptr[i], self.indptr[i + 1]
            # doc ids within one term are unique, so fancy-index += is exact.
            out[self.doc_ids[lo:hi]] += w * self.scores[lo:hi]
        return out

    def idf(self, df: int) -> float:
        """The (Lucene) inverse document frequency of a term held by ``df`` passages."""
        return idf(self.n_docs, df)

    def doc_freq(self, terms: Iterable[str]) -> int:
        """How many passages hold at least one of ``terms`` (tokens)."""
        rows = [self.doc_ids[self.indptr[i] : self.indptr[i + 1]] for i in (self.vocab.get(t) for t in terms) if i is not None]
        if not rows:
            return 0
        return len(rows[0]) if len(rows) == 1 else int(np.unique(np.concatenate(rows)).size)

    def group_weights(self, groups: Iterable[tuple[Sequence[str], Sequence[str]]]) -> dict[str, float]:
        """Weights for the tokens of synonym groups: each group's renderings count as one term.

        A group is (its renderings as whole tokens, the tokens of those renderings). Its IDF is
        that of the passages holding any rendering (as Lucene's SynonymQuery does), and no token
        of the group weighs more than that: an English word's rare dictionary sense ("security"
        -> 安保 beside 安全, "area" -> 地方) no longer scores as a rare, telling word. In one
        report such senses seldom occur; in a library some other report uses each of them.
        Measured (hybrid, library of 81 reports, dev English R@5 0.84 -> 0.92; README "In a library").
        A token in two groups keeps the lower weight; tokens of no group weigh 1.
        """
        def token_df(t: str) -> int:
            i = self.vocab.get(t)
            return 0 if i is None else int(self.indptr[i + 1] - self.indptr[i])

        return synonym_weights(groups, self.n_docs, self.doc_freq, token_df)

    def search_in(self, query_tokens: list[str], k: int, span: tuple[int, int],
                  weights: Mapping[str, float] | None = None) -> list[tuple[int, float]]:
        """The best ``k`` passages of one document (positions ``span`` = [lo, hi)) scored as if that
        document were the whole corpus: IDF over its own passages (length is normalised per file
        already), so the order is the one an index of that document alone gives. Positions and
        ties as in :meth:`search`; only positive scores.

        What `rag.retrieve.within_documents` ranks a library's documents by, each on its own terms:
        library-wide IDF scores a report's recurring words by other reports' use of them."""
        lo, hi = int(span[0]), int(span[1])
        n = hi - lo
        if k <= 0 or not query_tokens or n <= 0:
            return []
        out = np.zeros(n, dtype=np.float32)
        for term, qtf in Counter(query_tokens).items():
            i = self.vocab.get(term)
            if i is None:
                continue
            ids = self.doc_ids[self.indptr[i] : self.indptr[i + 1]]
            inside = (ids >= lo) & (ids < hi)
            df = int(inside.sum())
            if df == 0:
                continue
            # stored score = library idf * tf part; the document's own idf replaces the library's
            rescale = idf(n, df) / idf(self.n_docs, int(ids.size))
            w = qtf * (weights.get(term, 1.0) if weights else 1.0)
            out[ids[inside] - lo] += np.float32(w * rescale) * self.scores[self.indptr[i] : self.indptr[i + 1]][inside]
        pos = np.flatnonzero(out > 0)
        if pos.size == 0:
            return []
        order = np.lexsort((pos, -out[pos]))[:k]
        return [(lo + int(pos[j]), float(out[pos[j]])) for j in order]

    def postings(self, term: str) -> np.ndarray:
        """Positions of the passages that contain ``term`` (a token), in passage order."""
        i = self.vocab.get(term)
        if i is None:
            return np.zeros(0, dtype=np.int32)
        return np.sort(self.doc_ids[self.indptr[i] : self.indptr[i + 1]])

    def search(self, query_tokens: list[str], k: int, weights: Mapping[str, float] | None = None) -> list[tuple[int, float]]:
        """The best ``k`` passages as (position, score), best first; only positive scores."""
        if k <= 0 or not query_tokens or self.n_docs == 0:
            return []
        s = self.score(query_tokens, weights)
        pos = np.flatnonzero(s > 0)
        if pos.size == 0:
            return []
        # Best first; ties by passage position, so results are deterministic.
        order = np.lexsort((pos, -s[pos]))[:k]
        return [(int(pos[j]), float(s[pos[j]])) for j in order]

    # --- persistence: numpy arrays without pickle, JSON for the vocabulary -------------------

    def save(self, directory: Path) -> None:
        """Write ``bm25.npz`` (numeric arrays, no pickle) and ``bm25.json`` (format, parameters,
        vocabulary) into ``directory``, each through a temporary file and a rename."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        terms = [""] * len(self.vocab)
        for term, i in self.vocab.items():
            terms[i] = term
        arrays_tmp = directory / (_ARRAYS + ".tmp")
        with open(arrays_tmp, "wb") as fh:
            np.savez(fh, indptr=self.indptr, doc_ids=self.doc_ids, scores=self.scores)
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "n_docs": self.n_docs,
            "n_postings": int(self.doc_ids.size),
            "params": self.params,
            "terms": terms,
        }
        meta_tmp = directory / (_META + ".tmp")
        meta_tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        arrays_tmp.replace(directory / _ARRAYS)
        meta_tmp.replace(directory / _META)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Load an index written by :meth:`save` (no pickle involved). Raises
        :class:`~rag.errors.IndexMissingError` if there is none and
        :class:`~rag.errors.IndexCorruptError` if its files are garbled or disagree."""
        from rag.errors import IndexCorruptError, IndexMissingError

        directory = Path(directory)
        meta_path, arrays_path = directory / _META, directory / _ARRAYS
        if not meta_path.is_file() or not arrays_path.is_file():
            raise IndexMissingError(f"no lexical index in {directory}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT or meta.get("version") != _FORMAT_VERSION:
                raise ValueError(f"not a {_FORMAT} v{_FORMAT_VERSION} index")
            terms = meta["terms"]
            n_docs = int(meta["n_docs"])
            with np.load(arrays_path, allow_pickle=False) as z:
                indptr, doc_ids, scores = z["indptr"], z["doc_ids"], z["scores"]
            consistent = (
                isinstance(terms, list)
                and indptr.ndim == 1
                and indptr.size == len(terms) + 1
                and doc_ids.shape == scores.shape
                and doc_ids.ndim == 1
                and int(indptr[0]) == 0
                and int(indptr[-1]) == doc_ids.size == int(meta.get("n_postings", -1))
                and not (indptr.size > 1 and bool(np.any(np.diff(indptr) < 0)))
                and not (doc_ids.size and (int(doc_ids.min()) < 0 or int(doc_ids.max()) >= n_docs))
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as exc:
            # What damaged files raise: unreadable (OSError), bad JSON or arrays (ValueError,
            # json's JSONDecodeError included), missing keys or array members (KeyError), a JSON
            # value of the wrong shape (TypeError, AttributeError), a garbled .npz (BadZipFile, EOFError).
            raise IndexCorruptError(f"damaged lexical index in {directory}: {exc}") from exc
        if not consistent:
            raise IndexCorruptError(f"damaged lexical index in {directory}: its files disagree")
        vocab = {term: i for i, term in enumerate(terms)}
        return cls(vocab, indptr, doc_ids, scores, n_docs, meta.get("params"))
