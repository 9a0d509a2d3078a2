import pytest

from rag.errors import IndexCorruptError, IndexMissingError
from rag.index import current_version, load_index, model_slug


def test_index_round_trip_keeps_exact_citations(hash_assistant):
    manifest = hash_assistant.build()
    assert manifest.passages == len(hash_assistant.passages()) > 100
    assert manifest.model == "hash-bigram-64" and manifest.dim == 64
    assert list(manifest.corpus) == ["corpus/ciss-2022-asia-pacific-community-outlook.txt"]
    text = hash_assistant.documents()[0].text
    loaded = load_index(current_version(hash_assistant.index_dir, "hash-bigram-64"))
    for p in loaded.passages:
        assert text[p.start : p.end] == p.text


def test_no_pickle_anywhere_in_the_index(hash_assistant):
    hash_assistant.build()
    root = current_version(hash_assistant.index_dir, "hash-bigram-64")
    for f in root.rglob("*"):
        if f.is_file():
            assert f.suffix not in (".pkl", ".pickle")
            assert not f.read_bytes().startswith(b"\x80\x04"), f"{f} looks pickled"


def test_missing_index_is_reported_when_auto_build_is_off(report_corpus, tmp_path):
    from rag.assistant import Assistant

    from .conftest import HashEncoder

    a = Assistant(corpus_dir=report_corpus, index_dir=tmp_path / "none", encoder=HashEncoder(), auto_build=False)
    with pytest.raises(IndexMissingError, match="rag index"):
        a.ask("东盟")


def test_ask_builds_on_first_use_and_rebuilds_when_the_corpus_changes(report_corpus, tmp_path):
    from rag.assistant import Assistant

    from .conftest import HashEncoder

    notices = []
    kw = dict(corpus_dir=report_corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=notices.append)
    Assistant(**kw).ask("东盟")
    assert "first use" in notices[-1]
    Assistant(**kw).ask("东盟")
    assert len(notices) == 1  # fresh index: no rebuild
    (report_corpus / "added.md").write_text("# 新报告\n\n新的内容在这里。\n", encoding="utf-8")
    answer = Assistant(**kw).ask("新的内容", k=50)
    assert "corpus changed" in notices[-1]
    assert any(h.passage.source == "corpus/added.md" for h in answer.hits)


@pytest.mark.parametrize("victim", ["vectors.npy", "dense.faiss", "passages.jsonl", "manifest.json"])
def test_corrupt_files_are_detected_and_rebuilt(hash_assistant, victim):
    hash_assistant.build()
    root = current_version(hash_assistant.index_dir, "hash-bigram-64")
    f = root / victim
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match="rag index"):
        load_index(root)
    from rag.assistant import Assistant

    notices = []
    a = Assistant(corpus_dir=hash_assistant.corpus_dir, index_dir=hash_assistant.index_dir,
                  encoder=hash_assistant.encoder, on_notice=notices.append)
    assert a.ask("东盟").hits
    assert "rebuild" in notices[-1]


def test_a_new_build_switches_atomically_and_keeps_the_previous_version(hash_assistant):
    hash_assistant.build()
    first = current_version(hash_assistant.index_dir, "hash-bigram-64")
    hash_assistant.build()
    second = current_version(hash_assistant.index_dir, "hash-bigram-64")
    assert first != second and first.is_dir() and second.is_dir()
    hash_assistant.build()
    assert not first.exists()  # only the current and the previous version are kept
    assert not list((hash_assistant.index_dir / "hash-bigram-64").glob(".tmp-*"))


def test_model_slugs_are_safe_folder_names():
    assert model_slug("multilingual-e5-small-q4") == "multilingual-e5-small-q4"
    a, b = model_slug("intfloat/multilingual-e5-small"), model_slug("/models/other/multilingual-e5-small")
    assert a != b and "/" not in a + b
