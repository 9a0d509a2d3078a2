import pytest

from rag.corpus import load_corpus, load_document
from rag.errors import CorpusError

from .conftest import REPORT


def test_report_is_loaded_byte_for_byte_with_metadata(report_corpus):
    (doc,) = load_corpus(report_corpus)
    assert doc.text.encode("utf-8") == REPORT.read_bytes()
    assert doc.source == "corpus/ciss-2022-asia-pacific-community-outlook.txt"
    assert doc.info.title_zh == "亚太命运共同体展望" and doc.info.year == "2022"
    assert doc.info.title_en.startswith("An Outlook on Asia-Pacific Community")


def test_every_md_and_txt_file_is_indexed(report_corpus):
    (report_corpus / "extra.md").write_text("# 另一份报告\n\n内容。\n", encoding="utf-8")
    (report_corpus / "notes.json").write_text("{}", encoding="utf-8")
    assert [d.source for d in load_corpus(report_corpus)] == [
        "corpus/ciss-2022-asia-pacific-community-outlook.txt",
        "corpus/extra.md",
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"\xff\xfe bad bytes", "not valid UTF-8"),
        (b"abc\x00def", "looks binary"),
    ],
)
def test_unreadable_files_are_named_in_the_error(tmp_path, content, message):
    f = tmp_path / "broken.txt"
    f.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as err:
        load_document(f, tmp_path)
    assert "broken.txt" in str(err.value)


def test_missing_or_empty_corpus_folder(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match="no .md or .txt"):
        load_corpus(tmp_path)


def test_line_numbers_count_every_kind_of_line_end(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes("a\r\nb\rc\nd".encode())
    doc = load_document(f, tmp_path)
    assert [doc.line_of(doc.text.index(c)) for c in "abcd"] == [1, 2, 3, 4]


def test_a_file_over_the_size_limit_is_named(tmp_path, monkeypatch):
    import rag.corpus

    monkeypatch.setattr(rag.corpus, "MAX_FILE_BYTES", 10)
    f = tmp_path / "huge.txt"
    f.write_text("这是一个很长的文件。" * 5, encoding="utf-8")
    with pytest.raises(CorpusError, match="too large") as err:
        load_document(f, tmp_path)
    assert "huge.txt" in str(err.value)
