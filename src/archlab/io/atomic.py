"""Writes that either complete or leave things as they were.

Everything is written to a temporary name beside the target (so the final rename stays on
one filesystem), flushed to disk, and renamed into place. A failure at any point removes
the temporary and leaves the target untouched: nothing the user had is lost."""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def fsync_path(path: Path) -> None:
    """Flush a file or directory to disk (best effort where the platform cannot)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_refusal(target: Path) -> str | None:
    """Why the file `target` may not be replaced, or None: only an absent path or a regular file
    is. A rename over a symlink, FIFO or device node would silently swap it for our file."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    kind = "a symbolic link" if stat.S_ISLNK(mode) else "a directory" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, device or socket)"
    return f"{target}: is {kind}; refusing to replace it with an output file, choose another path or remove it"


def make_parent(target: Path) -> None:
    """Create the folders above `target`. One of them being a file was a bare "[Errno 17] File
    exists: 'x'", which reads as if the output itself existed: say which path is no folder."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), target.parent)
        raise NotADirectoryError(f"{target}: cannot be written there, {blocker} is not a folder") from None


@contextmanager
def atomic_file(target: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `target`; on a clean exit it replaces `target`, which must be
    absent or a regular file (checked before the write and again before the rename)."""
    target = Path(target)
    why = file_refusal(target)
    if why:
        raise FileExistsError(why)
    make_parent(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; our outputs are ordinary files
        why = file_refusal(target)  # again: the target may have changed while we wrote
        if why:
            raise FileExistsError(why)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(target.parent)


def refusal(target: Path, overwrite: bool) -> str | None:
    """Why the directory `target` may not be replaced, or None."""
    if target.is_symlink():
        return f"{target}: is a symbolic link; save to the directory it points to, or remove the link"
    if not target.exists():
        return None
    if not target.is_dir():
        return f"{target}: exists and is not a directory"
    if not overwrite and any(target.iterdir()):
        return f"{target}: exists and is not empty; pass overwrite=True to replace it, or choose a new directory"
    return None


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished `tmp` to `target`. An absent or empty target is replaced by one
    rename; a non-empty one (overwrite=True) is swapped in one step where the OS can, else
    moved aside first and put back if the second rename fails."""
    why = refusal(target, overwrite)  # again: the target may have changed while we wrote
    if why:
        raise FileExistsError(why)
    if not target.exists() or not any(target.iterdir()):
        os.replace(tmp, target)  # POSIX rename replaces an empty directory
        return
    if exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # now the old contents
        return
    aside = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


# When this process (near enough: this module) started. A temporary folder last changed before
# it was left by an earlier process that was killed mid-save; none of ours can be that old.
_STARTED = time.time()


def _temporary_name(target: Path) -> str:
    return f".{target.name}.tmp-{secrets.token_hex(4)}"


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporary folders a killed save to `target` left beside it: only names of
    exactly our pattern (`_temporary_name`), real folders (not links), older than this process."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.tmp-[0-9a-f]{{8}}")
    removed = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        if not pattern.fullmatch(p.name):
            continue
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_mtime < _STARTED:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextmanager
def atomic_directory(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A temporary directory beside `target` to fill; on a clean exit it becomes `target`.
    A non-empty `target` is refused unless overwrite=True (checked before and after the write)."""
    target = Path(target).absolute()
    why = refusal(target, overwrite)
    if why:  # before spending time on the write
        raise FileExistsError(why)
    make_parent(target)
    remove_stale_temporaries(target)
    tmp = target.with_name(_temporary_name(target))
    tmp.mkdir()
    try:
        yield tmp
        fsync_path(tmp)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_path(target.parent)
