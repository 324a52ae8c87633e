"""The xstilts cache directory, atomic file writes, and the clean-up of what a killed writer left.

A temporary file or directory is named ``.<name>.<pid>@<host>.<random>.tmp`` beside its destination, so that
:func:`sweep_temp` can tell the leftovers of a dead process (SIGKILL, a lost node) from the work of a live one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """Root of the cache: ``$XSTILTS_CACHE`` or ``~/.cache/xstilts``."""
    root = os.environ.get("XSTILTS_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "xstilts"


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[^@/]+)\.[A-Za-z0-9_]{8}\.tmp(?:\.old)?$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}@{socket.gethostname()}."


def sweep_temp(root: Path) -> list[Path]:
    """Remove, anywhere under ``root``, the temporary files and directories of writers that died on this host
    (those of live processes, and of other hosts, stay). Returns what was removed."""
    removed: list[Path] = []
    host = socket.gethostname()
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            m = _TEMP.match(name)
            if not m or m["host"] != host or pid_alive(int(m["pid"])):
                continue
            path = Path(folder) / name
            if name in dirs:
                shutil.rmtree(path, ignore_errors=True)
                dirs.remove(name)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        replace_dir(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def aside(new: Path) -> Path:
    """Where :func:`replace_dir` moves the old directory while ``new`` takes its place."""
    return new.with_name(new.name + ".old")


def replace_dir(new: Path, path: Path) -> None:
    """Put directory ``new`` in the place of ``path``; the old one is moved aside, not deleted, until then.
    A replace that a killed process left half done is finished first (see :func:`finish_replace`)."""
    finish_replace(new, path)
    old = aside(new)
    if path.exists():
        os.replace(path, old)
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)


def finish_replace(new: Path, path: Path) -> None:
    """Finish a :func:`replace_dir` of ``new`` over ``path`` that a killed process left half done. An aside
    exists only from the first rename to the end: if ``path`` is missing, ``new`` (complete by then) had not
    yet been moved in, so it is now; the aside is then dropped."""
    old = aside(new)
    if not old.exists():
        return
    if not path.exists() and new.exists():
        os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, hashed once per process while its size and modification time hold."""
    st = os.stat(path)
    return _sha256(os.path.realpath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=65536)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
