"""The project lock: one writing command at a time, readers never wait.

Two `vocal prepare` runs with different settings used to interleave their catalog rows and mels, and two
runs with the same settings both did all the work. Every command that writes the project now holds an
advisory ``flock(2)`` on ``<project>/.vocal.lock`` while it runs. flock belongs to the open file, so the
OS drops it when the process ends however it ends (kill -9 included): there is never a stale lock to
delete by hand. Commands that only read (recommend, evaluate, plot) take no lock: every artefact is
replaced atomically, so they always see a whole file.

Shards (``vocal prepare --shard I/N`` on several machines sharing the directory) write disjoint songs:
each holds the main lock *shared* plus its own exclusive ``shards/.I-of-N.lock``, so different shards run
at once, the same shard twice does not, and ``--merge-shards`` (exclusive on the main lock) waits for
every shard to finish.

The holder writes ``{"command", "pid", "started"}`` into its lock file, so the one who is refused can say
who is running. Where fcntl does not exist (Windows) the lock is a no-op.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vocalcli.errors import ProjectBusy, WriteError
from vocalcli.project import pid_alive, sweep_temps

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".vocal.lock"

_held: dict[str, int] = {}
"""Project roots this process already holds (count): a command that calls another library step that
would lock again (train -> embed) does not deadlock on itself."""


def shard_lock_path(root: Path, shard: tuple[int, int]) -> Path:
    return Path(root) / "shards" / f".{shard[0]}-of-{shard[1]}.lock"


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise WriteError(f"cannot lock the project: {path} cannot be created ({e.strerror}); check that "
                         f"{path.parent} is writable, or pass -p DIR for a project you can write") from None


def _try(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _describe_file(path: Path) -> str | None:
    """'vocal prepare' (PID 123, since 12:00:01) from a lock file, or None when it names nobody alive."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid):
        return None
    return f"'{info.get('command', 'vocal')}' (PID {pid}, since {info.get('started', '?')})"


def holders(root: Path) -> list[str]:
    """Who holds the project's locks now, for messages: running shards first, else the main holder."""
    root = Path(root)
    out = []
    for f in sorted((root / "shards").glob(".*-of-*.lock")):
        fd = os.open(f, os.O_RDONLY)
        try:
            busy = fcntl is not None and not _try(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)  # closing drops the probe's own lock, if it got one
        if busy:
            out.append(_describe_file(f) or f"a shard run ({f.name})")
    if not out:
        out.append(_describe_file(root / LOCK_NAME) or "another vocal command")
    return out


def _stamp(fd: int, command: str) -> None:
    info = {"command": command, "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)


def _acquire(fd: int, mode: int, root: Path, who: Callable[[], list[str]], wait: bool,
             on_wait: Callable[[str], None] | None) -> None:
    if _try(fd, mode):
        return
    names = " and ".join(who())
    if not wait:
        raise ProjectBusy(f"{root} is being written by {names}; wait for it to finish, or rerun with --wait "
                          "to queue behind it (readers such as recommend keep working meanwhile)")
    if on_wait:
        on_wait(f"waiting for {names} to finish writing {root} ...")
    fcntl.flock(fd, mode)


@contextmanager
def hold(root: Path | str, command: str, *, shard: tuple[int, int] | None = None, wait: bool = False,
         on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the project's write lock (or shard ``(i, n)``'s) for the block.

    Raises ProjectBusy naming the running command and PID when another process holds it, unless
    ``wait``: then ``on_wait`` is told whom we wait for, once, and the call blocks until it is free.
    """
    root = Path(root).resolve()
    key = str(root)
    if fcntl is None or _held.get(key):
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    main_path = root / LOCK_NAME
    opened: list[int] = []
    stamped: list[int] = []
    try:
        opened.append(main_fd := _open(main_path))
        if shard is None:
            _acquire(main_fd, fcntl.LOCK_EX, root, lambda: holders(root), wait, on_wait)
            _stamp(main_fd, command)
            stamped.append(main_fd)
        else:
            _acquire(main_fd, fcntl.LOCK_SH, root, lambda: [_describe_file(main_path) or "another vocal command"],
                     wait, on_wait)
            sp = shard_lock_path(root, shard)
            opened.append(shard_fd := _open(sp))
            _acquire(shard_fd, fcntl.LOCK_EX, root,
                     lambda: [_describe_file(sp) or f"another run of shard {shard[0]}/{shard[1]}"], wait, on_wait)
            _stamp(shard_fd, command)
            stamped.append(shard_fd)
        _held[key] = 1
        sweep_temps(root)  # temp files of writers that died (kill -9) mid-write
        yield
    finally:
        _held.pop(key, None)
        for fd in reversed(opened):
            _close(fd, clear=fd in stamped)


def _close(fd: int, clear: bool = False) -> None:
    try:
        if clear:  # only the holder clears its own stamp; a crash leaves it, harmlessly (nobody reads it then)
            os.ftruncate(fd, 0)
        os.close(fd)
    except OSError:
        pass
