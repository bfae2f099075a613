"""The project directory: finding it, its typed paths, and atomic writes.

Like git, the project is found by walking up from the working directory to the first `vocal.yaml`
(or given by -p/--project, or $VOCAL_PROJECT). Every artefact is written to a temp file in the same
directory and renamed into place, so an interrupted command never leaves a half-written file; a temp
file left by a process that was killed mid-write carries its PID and is swept by the next writer.
Reading is as careful: a damaged artefact is a one-line error naming the command that remakes it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocalcli import config as config_mod
from vocalcli.errors import ProjectNotFound, StaleArtifact, VocalError, WriteError

CONFIG_NAME = "vocal.yaml"

BALANCED_FIELDS = ["song_id", "singer", "split"]


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.csv"

    @property
    def balanced(self) -> Path:
        return self.root / "balanced.csv"

    @property
    def mels(self) -> Path:
        return self.root / "mels"

    def mel_path(self, song_id: str) -> Path:
        return self.mels / f"{song_id}.npy"

    @property
    def residues(self) -> Path:
        return self.root / "residues"

    def residue_path(self, song_id: str) -> Path:
        """residues/<id>.npy: log-mel of what MR removal took away (mixture minus vocal estimate)."""
        return self.residues / f"{song_id}.npy"

    @property
    def pitch(self) -> Path:
        return self.root / "pitch"

    def pitch_path(self, song_id: str) -> Path:
        """pitch/<id>.npy: [2, frames] float32, the vocal estimate's f0 (Hz) and energy (dB) on the mel's
        frames: what the melody vector's pitch profile reads (vocalcli/pitch_profile.py)."""
        return self.pitch / f"{song_id}.npy"

    @property
    def prepare_info(self) -> Path:
        """prepare.json: where the songs came from (songs_dir), for baselines that re-read audio."""
        return self.root / "prepare.json"

    def shard_catalog(self, index: int, count: int) -> Path:
        return self.root / "shards" / f"catalog.{index}-of-{count}.csv"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def checkpoint(self, task: str, which: str = "best") -> Path:
        return self.checkpoints / task / f"{which}.pt"

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def load_config(self) -> config_mod.Config:
        return config_mod.load(self.config_path)


def find(start: Path | str | None = None) -> Project:
    """The project containing ``start`` (default: $VOCAL_PROJECT or the working directory)."""
    if start is None:
        start = os.environ.get("VOCAL_PROJECT") or Path.cwd()
    here = Path(start).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return Project(d)
    raise ProjectNotFound(
        f"no {CONFIG_NAME} in {here} or any parent; run 'vocal prepare SONGS_DIR' here to create a "
        "project, or pass -p/--project DIR"
    )


def init(root: Path | str) -> Project:
    """Open the project at ``root``, creating it (with a default vocal.yaml) if there is none."""
    root = Path(root).resolve()
    if root.exists() and not root.is_dir():
        raise VocalError(f"project {root} is a file, not a folder; pass -p DIR for the project folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _write_error(root, e) from None
    proj = Project(root)
    if not proj.config_path.exists():
        write_text(proj.config_path, config_mod.to_yaml(config_mod.Config()))
    return proj


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
"""Read once at import: os.umask can only be read by setting it, which is not thread-safe later."""


def _write_error(path: Path, e: OSError) -> WriteError:
    """A one-line WriteError for an OSError while writing ``path``: what happened and what to do."""
    import errno

    what = e.strerror or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space (or move the project with -p) and rerun; finished work is kept"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make the folder writable, or pass -p DIR for a project folder you can write"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = "a file stands where a folder is needed; pass -p DIR for a project folder"
    else:
        fix = "check the disk and rerun; finished work is kept"
    return WriteError(f"cannot write {e.filename or path}: {what}; {fix}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; renamed onto it only if the block succeeds.

    The temp name carries our PID (``.NAME.PID.XXXX.tmp``) so that ``sweep_temps`` can tell a dead
    writer's leftovers from a live one's. The file gets the mode the umask gives new files (mkstemp makes
    0600). An OSError (disk full, no permission) becomes a WriteError naming the file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        os.close(fd)
    except OSError as e:
        raise _write_error(path, e) from None
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            os.chmod(tmp_path, 0o666 & ~_UMASK)
            os.replace(tmp_path, path)
        except OSError as e:
            raise _write_error(path, e) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _temp_owner(name: str) -> int | None:
    """PID in an atomic_path temp name ``.NAME.PID.XXXX.tmp`` (None: not one of ours)."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    parts = name[:-4].rsplit(".", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def sweep_temps(root: Path) -> list[Path]:
    """Delete temp files under ``root`` whose writer process is gone (killed mid-write); -> removed paths.

    A live writer's temps are left alone, so this is safe while other shards run. Symlinked folders are
    not followed.
    """
    removed = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for name in files:
            pid = _temp_owner(name)
            if pid is None or pid == os.getpid() or pid_alive(pid):
                continue
            try:
                os.unlink(os.path.join(d, name))
                removed.append(Path(d) / name)
            except OSError:
                pass
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (ours or anyone's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_npy(path: Path, array: Any) -> None:
    import numpy as np

    buf = io.BytesIO()  # np.save into a real file reports a full disk without its errno ("N requested")
    np.save(buf, array)
    write_bytes(path, buf.getvalue())


def write_csv(path: Path, rows: Iterable[dict[str, Any]], fields: list[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    write_text(path, buf.getvalue())


def read_csv(path: Path, required: Iterable[str] = (), fix: str = "") -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV (a BOM, as Excel writes, is fine) with ``required`` columns.

    Text that is not UTF-8, a file that is not CSV, or a missing column is a one-line VocalError naming
    the file; ``fix`` says what to do (e.g. the command that remakes the file).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = reader.fieldnames or []
    except UnicodeDecodeError as e:
        raise VocalError(f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                         f"save it as UTF-8 (in Excel: 'CSV UTF-8')" + (f", or {fix}" if fix else "")) from None
    except csv.Error as e:
        raise VocalError(f"{path} is not a readable CSV file ({e}); " + (fix or "fix or replace it")) from None
    missing = [c for c in required if c not in header]
    if missing:
        raise VocalError(f"{path} has no {', '.join(missing)} column (found: {', '.join(header) or 'nothing'}); "
                         + (fix or "fix its header row"))
    return rows


def read_json(path: Path, fix: str) -> Any:
    """A JSON artefact; a truncated or damaged one is a StaleArtifact whose message ends with ``fix``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise StaleArtifact(f"{path} is damaged (not valid JSON: {str(e).splitlines()[0]}); {fix}") from None


def load_npy(path: Path, fix: str, ndim: int = 2) -> Any:
    """A float array artefact [ndim dims]; a truncated, pickled or non-float file is a StaleArtifact."""
    import numpy as np

    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise StaleArtifact(f"{path} is damaged or not a plain array ({str(e).splitlines()[0]}); {fix}") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or a.ndim != ndim:
        what = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise StaleArtifact(f"{path} holds a {what}, expected {ndim}-D floats; {fix}")
    return a


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file (first 16 hex digits): records which checkpoint/embedding made an artefact."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]
