"""The `rag` command as a user runs it: real default model, real report, a fresh process."""

import json
import os
import re
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


CITED = re.compile(r"^    (?P<ref>\S+:L\d+-\d+)  \(chars (?P<start>\d+)-(?P<end>\d+), score [-\d.]+, id (?P<id>\S+)\)$", re.M)


def test_ask_zh_cites_the_passages_on_asean_centrality(env, real_assistant):
    r = rag("ask", "东盟在地区合作中的中心地位是什么？", env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "Not found" not in r.stdout
    cited = CITED.findall(r.stdout)
    assert [line.split("]")[0] for line in r.stdout.splitlines() if line.startswith("[")] == ["[1", "[2", "[3", "[4", "[5"]
    assert len(cited) == 5
    by_id = {p.id: p for p in real_assistant.passages()}
    for ref, start, end, pid in cited:  # every citation is the passage's own file, lines and characters
        p = by_id[pid]
        assert ref == f"{p.source}:L{p.line_start}-{p.line_end}" and (int(start), int(end)) == (p.start, p.end)
    # The answer: part two (东盟“中心地位”), where the report says what ASEAN's central role is.
    top3 = [by_id[pid] for *_, pid in cited[:3]]
    assert any("东盟“中心地位”" in " ".join(p.section) and "东盟" in p.text and "“中心作用”" in p.text for p in top3), [
        (p.id, p.section) for p in top3
    ]


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


@pytest.mark.parametrize(
    "args, message",
    [
        (("ask", "东盟", "--k", "abc"), "Invalid value for '--k'"),
        (("ask", "东盟", "--k"), "requires an argument"),
        (("ask", "东盟", "--no-such-option"), "No such option"),
        (("no-such-command",), "No such command"),
        (("show",), "Missing argument"),
        (("serve", "--port", "eighty"), "Invalid value for '--port'"),
    ],
)
def test_usage_errors_get_one_line_and_exit_2(args, message):
    """Typer's own copy of click raises usage errors that are not click's ClickException: each is
    still one line naming the command's --help, never a traceback (no index or model is needed)."""
    r = rag(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and message in r.stderr and "--help" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_help_names_the_environment_variables_and_defaults():
    """Square brackets in option help are rich markup to typer and vanished from --help."""
    from typer.testing import CliRunner

    from rag import cli

    def shown(command: str) -> str:  # the help's words, without the boxes and line breaks around them
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", CliRunner().invoke(cli.app, [command, "--help"]).output).split())

    for command in ("ask", "index", "show", "docs", "serve", "eval"):
        out = shown(command)
        for words in ("env RAG_CORPUS_DIR; default: the project's corpus/", "env RAG_INDEX_DIR", "env RAG_MODEL", "env RAG_STORE"):
            assert words in out, (command, words)
    assert "default: the project's eval/gold_*.jsonl" in shown("eval")


def test_an_index_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    from rag import cli
    from rag.assistant import Assistant
    from rag.errors import IndexWriteError

    from .conftest import HashEncoder, linked_corpus

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    assistant = Assistant(corpus_dir=linked_corpus(tmp_path), index_dir=blocker / "idx", encoder=HashEncoder(), on_notice=lambda m: None)
    with pytest.raises(IndexWriteError, match="cannot write the index under .*a-file/idx: Not a directory.*--index-dir"):
        assistant.index()
    monkeypatch.setattr(cli, "_assistant", lambda *a, **kw: assistant)
    monkeypatch.setattr("sys.argv", ["rag", "ask", "东盟"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: cannot write the index under") and len(err.strip().splitlines()) == 1


def test_unknown_model_is_a_clear_error(env, tmp_path):
    r = rag("ask", "东盟", "--model", str(tmp_path / "no-such-model"), "--index-dir", str(tmp_path), env_extra=env)
    assert r.returncode != 0 and "cannot load model" in r.stderr and "Traceback" not in r.stderr


def test_non_utf8_corpus_file_is_named(env, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bad.txt").write_bytes("报告".encode("gb18030"))
    r = rag("ask", "东盟", "--corpus", str(corpus), "--index-dir", str(tmp_path / "i"), env_extra=env)
    assert r.returncode != 0 and "bad.txt" in r.stderr and "UTF-8" in r.stderr


def test_show_prints_a_passage_with_context(env, real_assistant):
    p = real_assistant.passages()[10]
    r = rag("show", p.id, env_extra=env)
    assert r.returncode == 0, r.stderr
    assert f"{p.source}:L{p.line_start}-{p.line_end}" in r.stdout
    assert p.text.strip().splitlines()[0][:20] in r.stdout
    r2 = rag("show", f"{p.source}:{p.line_start}", env_extra=env)
    assert r2.returncode == 0 and p.id in r2.stdout


def test_show_folds_links_as_ask_does_in_the_passage_and_its_context(tmp_path, monkeypatch):
    """`rag show` prints what `rag ask` prints of a passage (`rag.cite.shown_text`): link words and
    [source] names, no addresses; its citation line keeps the file's lines and offsets."""
    from typer.testing import CliRunner

    from rag import cli
    from rag.assistant import Assistant

    from .conftest import HashEncoder, linked_corpus

    corpus = linked_corpus(tmp_path)
    assistant = Assistant(corpus_dir=corpus, index_dir=tmp_path / "i", encoder=HashEncoder(), on_notice=lambda m: None)
    monkeypatch.setattr(cli, "_assistant", lambda *a, **kw: assistant)
    linked, climate = assistant.passages()[0], assistant.passages()[-1]
    assert "](https://" in linked.text
    for args in ([linked.id], [f"{linked.source}:{linked.line_start}"], [climate.id, "-C", "4"]):
        r = CliRunner().invoke(cli.app, ["show", *args])
        assert r.exit_code == 0, r.output
        assert "今年以来，据新华社报道，东盟经济增长强劲，区域贸易持续扩大[sina]。" in r.output, args
        assert "各国认为<script>alert(1)</script>开放合作是东盟经济增长的关键[163][ft.com]。" in r.output, args
        assert "https://" not in r.output and "](" not in r.output, args
    r = CliRunner().invoke(cli.app, ["show", linked.id])
    assert r.output.splitlines()[0] == f"{linked.source}:L{linked.line_start}-{linked.line_end}  (chars {linked.start}-{linked.end})"
    assert "【今年以来，据新华社报道，" in r.output  # the cited passage is still marked


# A corrupt index rebuilt by `rag ask` with a notice: tests/test_faults.py (every file of an index:
# tests/test_index.py), on a small corpus, as here: each real build of the report costs ~40 s of CPU.
def test_index_command_reports_what_it_built(real_env, tmp_path):
    from rag.chunking import ChunkSettings, split_passages
    from rag.corpus import load_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    report = (ROOT / "corpus/ciss-2022-asia-pacific-community-outlook.txt").read_text(encoding="utf-8")
    (corpus / "part.txt").write_text(report[:3000], encoding="utf-8")
    (corpus / "notes.md").write_text("# 笔记\n\n东盟的中心地位。\n", encoding="utf-8")
    r = rag("index", "--corpus", str(corpus), "--index-dir", str(tmp_path / "fresh"), env_extra=real_env)
    assert r.returncode == 0, r.stderr
    expected = sum(len(split_passages(d, ChunkSettings())) for d in load_corpus(corpus))
    m = re.search(r"^Indexed (\d+) passages \(\d+ vectors, dim 384, flat\) from 2 file\(s\) with multilingual-e5-small-q4", r.stdout, re.M)
    assert m and int(m.group(1)) == expected, r.stdout
    assert re.search(rf"2 file\(s\): 2 added \({expected} passages, \d+ vectors embedded\)", r.stdout), r.stdout
    assert "Embedding [" in r.stderr and "/s, ETA" in r.stderr
    again = rag("index", "--corpus", str(corpus), "--index-dir", str(tmp_path / "fresh"), env_extra=real_env)
    assert "2 file(s): 2 unchanged in" in again.stdout and "Embedding" not in again.stderr


def test_a_library_passage_is_printed_with_its_links_folded_and_json_keeps_the_file_text(tmp_path, monkeypatch):
    """Human output folds link targets and citation markers (`rag.cite.folded`); --json is unchanged:
    the exact cited characters, with `hidden` naming what a display folds."""
    from typer.testing import CliRunner

    from rag import cli
    from rag.assistant import Assistant

    from .conftest import HashEncoder, linked_corpus

    corpus = linked_corpus(tmp_path)
    assistant = Assistant(corpus_dir=corpus, index_dir=tmp_path / "i", encoder=HashEncoder(), on_notice=lambda m: None)
    monkeypatch.setattr(cli, "_assistant", lambda *a, **kw: assistant)
    question = "东盟经济增长的关键是什么？"
    r = CliRunner().invoke(cli.app, ["ask", question, "--k", "2"])
    assert r.exit_code == 0, r.output
    body = "".join(line.strip() for line in r.output.splitlines() if line.startswith("    ") and "chars" not in line)
    body = body.replace("【", "").replace("】", "")
    assert "今年以来，据新华社报道，东盟经济增长强劲，区域贸易持续扩大[sina]。" in body
    assert "各国认为<script>alert(1)</script>开放合作是东盟经济增长的关键[163][ft.com]。" in body
    assert "https://" not in r.output and "](" not in r.output
    # The citation line still gives the file's offsets of the whole passage, URLs included.
    text = (corpus / "asean-links.md").read_text(encoding="utf-8")
    m = CITED.search(r.output)
    start, end = int(m.group("start")), int(m.group("end"))
    assert "新华社报道](https://www.news.cn/" in text[start:end]
    # --json: the same fields as before, the exact file text, the folded spans listed.
    j = CliRunner().invoke(cli.app, ["ask", question, "--k", "2", "--json"])
    p = next(p for p in json.loads(j.output)["passages"] if "新华社" in p["text"])
    assert p["text"] == text[p["start"] : p["end"]] and "https://www.news.cn/" in p["text"]
    assert set(p) == {"rank", "score", "id", "source", "section", "start", "end", "line_start", "line_end", "text",
                      "kind", "sentences", "pages", "title", "hidden", "highlight", "matched_terms"}
    assert all("http" in text[s:e] or text[s:e] == "[" for s, e in p["hidden"])
