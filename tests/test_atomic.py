"""rag.atomic: a reader sees the old content or the new, never a part, and nothing is left behind."""

import os
import stat

import pytest

from rag import atomic


def test_write_text_and_bytes_replace_the_file_and_leave_no_temporary(tmp_path):
    f = tmp_path / "a.json"
    f.write_text("old")
    assert atomic.write_text(f, "新的 text\n") == f
    assert f.read_text(encoding="utf-8") == "新的 text\n"
    atomic.write_bytes(f, b"\x00\x01")
    assert f.read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_new_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "t", "x")
        atomic.write_bytes(tmp_path / "lib.so", b"x", mode=0o777)
        with atomic.directory(tmp_path / "d") as d:
            (d / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "lib.so").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic.open_write(f) as fh:
            fh.write(b"half")
            raise KeyboardInterrupt
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_directory_swaps_a_whole_folder_in_and_keeps_the_old_one_on_failure(tmp_path):
    target = tmp_path / "models" / "m"
    with atomic.directory(target) as d:
        (d / "sub").mkdir()
        (d / "sub" / "w.bin").write_bytes(b"1")
    assert (target / "sub" / "w.bin").read_bytes() == b"1"
    with atomic.directory(target) as d:
        (d / "w.bin").write_bytes(b"2")
    assert (target / "w.bin").read_bytes() == b"2" and not (target / "sub").exists()
    with pytest.raises(RuntimeError):
        with atomic.directory(target) as d:
            (d / "w.bin").write_bytes(b"partial")
            raise RuntimeError("interrupted")
    assert (target / "w.bin").read_bytes() == b"2"
    assert [p.name for p in target.parent.iterdir()] == ["m"]


def test_directory_replaces_a_symlink_without_touching_what_it_points_to(tmp_path):
    elsewhere = tmp_path / "read-only-original"
    elsewhere.mkdir()
    (elsewhere / "w.bin").write_bytes(b"keep")
    target = tmp_path / "cache" / "m"
    target.parent.mkdir()
    target.symlink_to(elsewhere)
    with atomic.directory(target) as d:
        (d / "w.bin").write_bytes(b"new")
    assert not target.is_symlink() and (target / "w.bin").read_bytes() == b"new"
    assert (elsewhere / "w.bin").read_bytes() == b"keep"


def test_file_path_hands_a_tool_a_name_and_swaps_the_file_in(tmp_path):
    import sqlite3

    target = tmp_path / "d.sqlite"
    target.write_bytes(b"old")
    with atomic.file_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        db = sqlite3.connect(tmp)
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
        assert target.read_bytes() == b"old"  # readers still see the old file
    assert sqlite3.connect(target).execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]
    assert [p.name for p in tmp_path.iterdir()] == ["d.sqlite"]


def test_file_path_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "d.sqlite"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.file_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["d.sqlite"]
