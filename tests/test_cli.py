"""The `rag` command as a user runs it: real default model, real report, a fresh process."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT


def rag(*args, env_extra=None, input=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, cwd=ROOT, input=input, timeout=600
    )


@pytest.fixture(scope="module")
def env(real_env, real_assistant):
    # real_assistant has built the index in real_env already.
    return real_env


def test_ask_zh_prints_cited_passages_about_asean_centrality(env):
    r = rag("ask", "东盟在地区合作中的中心地位是什么？", env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "[1]" in r.stdout and "[5]" in r.stdout
    assert "corpus/ciss-2022-asia-pacific-community-outlook.txt:L" in r.stdout
    assert "中心" in r.stdout and "东盟" in r.stdout
    assert "Traceback" not in r.stderr


def test_ask_en_population_ageing_finds_recommendation_2_8(env):
    r = rag("ask", "What does the report recommend on population ageing?", "--json", env_extra=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"id", "question", "passages", "not_found"}
    top3 = out["passages"][:3]
    assert any("人口老龄化" in p["text"] for p in top3)
    text = (ROOT / "corpus/ciss-2022-asia-pacific-community-outlook.txt").read_bytes().decode("utf-8")
    for p in out["passages"]:
        assert text[p["start"] : p["end"]] == p["text"]
        assert set(p) >= {"rank", "score", "source", "start", "end", "line_start", "line_end", "section", "text"}


def test_batch_answers_good_lines_and_reports_bad_ones(env, tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(
        '{"id": "a", "question": "什么是开放的区域主义？"}\nnot json\n{"id": "b", "question": "What is IPEF?"}\n{"id": "c", "question": "  "}\n',
        encoding="utf-8",
    )
    r = rag("ask", "--batch", str(f), "--json", "--k", "3", env_extra=env)
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["id"] for x in lines] == ["a", "b"]
    assert all(len(x["passages"]) == 3 for x in lines)
    assert f"{f}:2:" in r.stderr and f"{f}:4:" in r.stderr
    assert r.returncode == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("ask", "   "), "empty"),
        (("ask", "东盟", "--k", "0"), "positive"),
        (("ask", "东盟", "--mode", "magic"), "unknown mode"),
        (("ask", "东盟", "--corpus", "/nonexistent/corpus"), "does not exist"),
        (("show", "corpus/../../etc/passwd:1"), "not a file of the corpus"),
        (("show", "corpus/ciss-2022-asia-pacific-community-outlook.txt:99999"), "outside"),
    ],
)
def test_bad_input_gets_one_line_and_non_zero_exit(env, args, message):
    r = rag(*args, env_extra=env)
    assert r.returncode != 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unknown_model_is_a_clear_error(env, tmp_path):
    r = rag("ask", "东盟", "--model", str(tmp_path / "no-such-model"), "--index-dir", str(tmp_path), env_extra=env)
    assert r.returncode != 0 and "cannot load model" in r.stderr and "Traceback" not in r.stderr


def test_non_utf8_corpus_file_is_named(env, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bad.txt").write_bytes("报告".encode("gb18030"))
    r = rag("ask", "东盟", "--corpus", str(corpus), "--index-dir", str(tmp_path / "i"), env_extra=env)
    assert r.returncode != 0 and "bad.txt" in r.stderr and "UTF-8" in r.stderr


def test_corrupt_index_is_rebuilt_with_a_notice(env, tmp_path):
    import shutil

    idx = tmp_path / "idx"
    shutil.copytree(env["RAG_INDEX_DIR"], idx)
    version = next(p for p in (idx / "multilingual-e5-small-q4").iterdir() if p.is_dir() and p.name.startswith("v"))
    (idx / "multilingual-e5-small-q4" / "CURRENT").write_text(version.name + "\n")
    (version / "terms.json").write_bytes(b"garbage")
    r = rag("ask", "东盟", "--json", env_extra={**env, "RAG_INDEX_DIR": str(idx)})
    assert r.returncode == 0, r.stderr
    assert "corrupt" in r.stderr and "rebuild" in r.stderr


def test_show_prints_a_passage_with_context(env, real_assistant):
    p = real_assistant.passages()[10]
    r = rag("show", p.id, env_extra=env)
    assert r.returncode == 0, r.stderr
    assert f"{p.source}:L{p.line_start}-{p.line_end}" in r.stdout
    assert p.text.strip().splitlines()[0][:20] in r.stdout
    r2 = rag("show", f"{p.source}:{p.line_start}", env_extra=env)
    assert r2.returncode == 0 and p.id in r2.stdout


def test_index_command_reports_what_it_built(env, tmp_path):
    r = rag("index", "--index-dir", str(tmp_path / "fresh"), env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "Indexed 102 passages (417 vectors" in r.stdout and "1 file(s): 1 added (102 passages, 417 vectors embedded)" in r.stdout
    assert "Embedding [" in r.stderr and "417/417 texts" in r.stderr and "/s, ETA" in r.stderr
    again = rag("index", "--index-dir", str(tmp_path / "fresh"), env_extra=env)
    assert "1 file(s): 1 unchanged in" in again.stdout and "Embedding" not in again.stderr
