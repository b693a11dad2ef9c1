"""Files: hashes and atomic writes. A result on disk is either whole or absent, never half written."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _open_regular(path: Path, what: str):
    """`path` opened for reading if it is a regular file (checked on the open descriptor, opened without blocking,
    so a FIFO never hangs and /dev/zero is never read); an InputError naming it otherwise."""
    import stat

    from idia.errors import InputError
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: is a folder, not a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file (a device, FIFO or socket); expected a {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def check_regular_file(path: str | Path, what: str = "file") -> None:
    """That an existing `path` is a regular file, before a library opens it by name (torch, safetensors): a
    FIFO or a device given as a checkpoint is refused in one line instead of hanging or reading forever. A
    missing path is left to the reader's own message."""
    path = Path(path)
    if path.is_dir():
        return
    try:
        f, _ = _open_regular(path, what)
    except (FileNotFoundError, NotADirectoryError):
        return
    f.close()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a regular file's bytes (a FIFO or device is an InputError, never read)."""
    digest = hashlib.sha256()
    f, _ = _open_regular(Path(path), "file")
    with f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


MAX_RECORD_BYTES = 2 << 30  # 2 GiB: far above any results.json idia writes, far below what exhausts memory


def read_regular_bytes(path: str | Path, limit: int = MAX_RECORD_BYTES, what: str = "file",
                       missing: str | None = None) -> bytes:
    """A regular file's bytes, at most `limit` of them; anything else (a FIFO, /dev/zero, a folder, a file over
    the limit) is an InputError naming the path, instead of a hang or running out of memory."""
    from idia.errors import InputError
    path = Path(path)
    try:
        f, st = _open_regular(path, what)
    except FileNotFoundError:
        raise InputError(f"{path}: {missing or 'no such ' + what}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a {what}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        if st.st_size > limit:
            raise InputError(f"{path}: {st.st_size:,} bytes is over the {limit:,}-byte limit for a {what}")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e.strerror})") from None
    if len(data) > limit:
        raise InputError(f"{path}: over the {limit:,}-byte limit for a {what}")
    return data


def read_text_file(path: str | Path, what: str, limit: int = 64 << 20) -> str:
    """A regular UTF-8 text file (names, aliases, prompts), or one line saying why not."""
    from idia.errors import InputError
    data = read_regular_bytes(path, limit, what, missing="no such file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 {what}") from None


LOCK_FILE = ".idia.lock"


@contextlib.contextmanager
def output_lock(folder: str | Path):
    """Hold an exclusive lock on an output folder for a whole run, so two runs cannot interleave their files
    (results.json from one, scores.csv from the other). The lock is the kernel's (flock), so it is released
    when the process ends however it ends, and a stale lock file from a killed run blocks nothing."""
    from idia.errors import InputError
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise InputError(f"{folder}: is in use by another idia run (pid {holder}); wait for it to finish "
                             "or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield folder
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(obj: Any) -> str:
    """The one spelling of a JSON value that hashes are taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file beside the target, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_text_writer(path: str | Path):
    """A text file written as a stream and renamed into place when the block ends without an error: a reader
    sees the old file or the whole new one, and a large table never has to be held in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# OWASP's CSV-injection guidance: a text cell starting with one of these is read as a formula by spreadsheets
# ("=HYPERLINK(...)" as a person's name). Such a cell is written with a leading apostrophe, the spreadsheets' own
# mark for "this is text"; numbers are written as numbers and never touched.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value):
    """A text cell made inert for spreadsheets (see FORMULA_START); anything else unchanged. Every CSV idia
    writes passes its text cells (names, files, templates) through this."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value
