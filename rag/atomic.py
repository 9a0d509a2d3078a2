"""Writing files and folders so that a reader sees the old content or the new, never a part.

One recipe everywhere: write beside the target under a unique temporary name, flush and fsync
it, `os.replace` it over the target, then fsync the folder that holds it (so the rename itself
survives a power cut). A failure, or an interruption, leaves the target as it was and removes
the temporary file. New files get the usual permissions (0o666, or 0o777 for folders, less the
umask), as `open` and `mkdir` would give them.

    from rag import atomic
    atomic.write_text(path, "…")            # or write_bytes(path, b"…")
    with atomic.open_write(path) as fh:     # streamed writes (large files)
        fh.write(...)
    with atomic.file_path(path) as tmp:     # a tool that writes a file by name (SQLite)
        sqlite3.connect(tmp)...
    with atomic.directory(target) as tmp:   # build a whole folder, then swap it in
        (tmp / "a.json").write_text(...)
"""

from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

__all__ = ["write_bytes", "write_text", "open_write", "file_path", "directory", "fsync_dir", "fsync_tree", "TMP_TAG", "OLD_TAG"]

#: Temporary names are `.<target name><TAG><random>` beside the target; a caller may sweep stale ones.
TMP_TAG = ".tmp-"
OLD_TAG = ".old-"


def _sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}{tag}{os.getpid()}-{secrets.token_hex(4)}")


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename or a new entry in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows, or a folder we may not read
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def open_write(path: str | os.PathLike, mode: int = 0o666) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces `path` when the block ends without an error.

    `mode` is the permission of a new file before the umask (0o777 for a shared library)."""
    path = Path(path)
    tmp = _sibling(path, TMP_TAG)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


@contextmanager
def file_path(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary path beside `path`, for writers that need a file name rather than a
    handle (SQLite). When the block ends without an error the file there is fsynced and replaces
    `path`; on an error it is removed and `path` is left as it was."""
    path = Path(path)
    tmp = _sibling(path, TMP_TAG)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes, mode: int = 0o666) -> Path:
    """Replace `path` with `data` atomically and durably; returns the path."""
    with open_write(path, mode) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Replace `path` with `text` (UTF-8 by default, newlines as given) atomically and durably."""
    return write_bytes(path, text.encode(encoding))


def fsync_tree(root: str | os.PathLike) -> None:
    """fsync every file under `root` and every folder of it: a folder built under a temporary name
    is durable before it is renamed into place."""
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(folder)


@contextmanager
def directory(target: str | os.PathLike) -> Iterator[Path]:
    """A new empty folder beside `target`; when the block ends without an error, every file in it
    is fsynced and it takes `target`'s place (an existing `target` is moved aside, then removed).
    On an error the temporary folder is removed and `target` is left as it was.

    Readers that open `target` see the old folder or the new one. Between the two renames there
    is an instant with no `target`; a reader that must never see that keeps a pointer file
    written with `write_text` instead (as the index does with CURRENT)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, TMP_TAG)
    os.mkdir(tmp, 0o777)
    try:
        yield tmp
        fsync_tree(tmp)
        old = None
        if target.exists() or target.is_symlink():
            old = _sibling(target, OLD_TAG)
            os.replace(target, old)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
