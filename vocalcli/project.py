"""The project directory: finding it, its typed paths, and atomic writes.

Like git, the project is found by walking up from the working directory to the first `vocal.yaml`
(or given by -p/--project, or $VOCAL_PROJECT). Every artefact is written to a temp file in the same
directory and renamed into place, so an interrupted command never leaves a half-written file.
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
from vocalcli.errors import ProjectNotFound

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
    root.mkdir(parents=True, exist_ok=True)
    proj = Project(root)
    if not proj.config_path.exists():
        write_text(proj.config_path, config_mod.to_yaml(config_mod.Config()))
    return proj


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; renamed onto it only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_npy(path: Path, array: Any) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def write_csv(path: Path, rows: Iterable[dict[str, Any]], fields: list[str]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    write_text(path, buf.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file (first 16 hex digits): records which checkpoint/embedding made an artefact."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]
