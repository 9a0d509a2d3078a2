"""`rag docs` and Assistant.documents_status(): titles, passage counts and index state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from rag.assistant import Assistant

from .conftest import REPORT, ROOT, HashEncoder


def _corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPORT, corpus / REPORT.name)
    shutil.copy(REPORT.with_name(REPORT.stem + ".meta.json"), corpus)
    (corpus / "a.md").write_text("# 第一份报告\n\n东盟中心地位。\n\n中美关系。\n", encoding="utf-8")
    (corpus / "b.md").write_text("# 第二份报告\n\n供应链韧性。\n", encoding="utf-8")
    return corpus


def _rag(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_states_follow_the_files_after_the_index_was_built(tmp_path):
    corpus = _corpus(tmp_path)
    a = Assistant(corpus_dir=corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=lambda m: None)
    before = a.documents_status()
    assert {r.name: (r.state, r.passages) for r in before} == {REPORT.name: ("new", None), "a.md": ("new", None), "b.md": ("new", None)}
    assert not (tmp_path / "idx").exists()  # reading the status builds nothing

    index = a.index()
    counts = {}
    for p in index.passages:
        counts[p.source] = counts.get(p.source, 0) + 1
    (corpus / "a.md").write_text("# 第一份报告\n\n东盟中心地位，改过了。\n", encoding="utf-8")
    (corpus / "b.md").unlink()
    (corpus / "c.md").write_text("# 第三份报告\n\n新加入的文件。\n", encoding="utf-8")
    fresh = Assistant(corpus_dir=corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=lambda m: None)
    rows = {r.name: r for r in fresh.documents_status()}
    assert {n: r.state for n, r in rows.items()} == {REPORT.name: "indexed", "a.md": "changed", "c.md": "new", "b.md": "removed"}
    assert rows[REPORT.name].passages == counts["corpus/" + REPORT.name]
    assert rows["b.md"].passages == counts["corpus/b.md"] and rows["c.md"].passages is None
    report = rows[REPORT.name]
    assert (report.title_zh, report.year) == ("亚太命运共同体展望", "2022")
    assert report.title_en.startswith("An Outlook on Asia-Pacific") and "Tsinghua" in report.publisher
    assert rows["a.md"].title == "第一份报告"


def test_rag_docs_lists_titles_counts_and_states_also_as_json(tmp_path):
    corpus = _corpus(tmp_path)
    Assistant(corpus_dir=corpus, index_dir=tmp_path / "idx", encoder=HashEncoder(), on_notice=lambda m: None).index()
    (corpus / "new.md").write_text("# 新报告\n\n内容。\n", encoding="utf-8")
    common = ("--corpus", str(corpus), "--index-dir", str(tmp_path / "idx"), "--model", HashEncoder.name)
    r = _rag("docs", *common)
    assert r.returncode == 0, r.stderr
    assert "亚太命运共同体展望 / An Outlook on Asia-Pacific Community" in r.stdout and "2022" in r.stdout
    lines = r.stdout.splitlines()
    assert any(line.startswith("indexed") and REPORT.name in line for line in lines)
    assert any(line.startswith("new") and "new.md" in line for line in lines)
    assert "4 document(s) in the corpus: 3 indexed, 1 new." in r.stdout
    assert "rag index" in r.stderr
    out = json.loads(_rag("docs", "--json", *common).stdout)
    by_name = {d["name"]: d for d in out}
    assert by_name["new.md"]["state"] == "new" and by_name["new.md"]["passages"] is None
    assert by_name["a.md"] == {**by_name["a.md"], "state": "indexed", "title": "第一份报告", "source": "corpus/a.md"}
    assert by_name["a.md"]["passages"] >= 1
