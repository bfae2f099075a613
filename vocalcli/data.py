"""Training data: memory-mapped mels, random crops and deterministic per-epoch batch plans.

The corpus is never loaded into RAM: each mels/<song_id>.npy (float16 [n_mels, frames]) is opened with
``np.load(mmap_mode='r')`` on first use and a crop is one strided copy out of the page cache. All
randomness of an epoch (which songs, which crop starts) is drawn up front from ``(seed, epoch)`` in the
main process, so the batches are the same for any number of loader workers and after a resume. The
transforms then run on whole batches on the training device (vocalcli.transforms).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from vocalcli import catalog
from vocalcli import project as project_mod
from vocalcli.errors import MissingArtifact


@dataclass(frozen=True)
class Song:
    song_id: str
    singer: str
    split: str  # train / val / test, or "" for catalog songs outside balanced.csv
    path: Path  # absolute path of the .npy log-mel


def catalog_songs(project: project_mod.Project) -> list[Song]:
    """Every `ok` song of catalog.csv, in catalog order."""
    songs = []
    for r in catalog.ok_rows(project):
        if r.get("mel"):
            songs.append(Song(r["song_id"], r.get("singer", ""), "", project.root / r["mel"]))
    return songs


def split_songs(project: project_mod.Project, split: str) -> list[Song]:
    """Songs of one split of balanced.csv (train / val / test) whose mel is in the catalog."""
    if not project.balanced.exists():
        raise MissingArtifact(f"{project.balanced} does not exist; run 'vocal balance' first")
    by_id = {s.song_id: s for s in catalog_songs(project)}
    out = []
    for r in project_mod.read_csv(project.balanced):
        if r.get("split") == split and r["song_id"] in by_id:
            s = by_id[r["song_id"]]
            out.append(Song(s.song_id, r.get("singer") or s.singer, split, s.path))
    return out


class MelBank:
    """Lazily memory-mapped mels of ``songs``; ``frames[i]`` is song i's length (read from the header)."""

    def __init__(self, songs: list[Song]) -> None:
        self.songs = songs
        self._maps: dict[int, np.ndarray] = {}
        shapes = [self.mel(i).shape for i in range(len(songs))]
        self.n_mels = shapes[0][0] if shapes else 0
        self.frames = np.array([s[1] for s in shapes], dtype=np.int64)
        self._maps.clear()  # reopened lazily (also in each loader worker)

    def __len__(self) -> int:
        return len(self.songs)

    def mel(self, i: int) -> np.ndarray:
        m = self._maps.get(i)
        if m is None:
            try:
                m = np.load(self.songs[i].path, mmap_mode="r")
            except (OSError, ValueError) as e:
                raise MissingArtifact(
                    f"cannot read mel {self.songs[i].path} ({e}); run 'vocal prepare' again") from e
            self._maps[i] = m
        return m

    def random_starts(self, idx: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform crop starts [B] for songs ``idx`` (0 where the song is shorter than ``length``)."""
        room = np.maximum(self.frames[idx] - length, 0)
        return (rng.random(len(idx)) * (room + 1)).astype(np.int64)

    def crops(self, idx: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        """[B, n_mels, length] float32 crops; songs shorter than ``length`` are edge-padded."""
        out = np.empty((len(idx), self.n_mels, length), dtype=np.float32)
        for b, (i, s) in enumerate(zip(idx.tolist(), starts.tolist(), strict=True)):
            m = self.mel(i)
            seg = m[:, s: s + length]
            out[b, :, : seg.shape[1]] = seg
            if seg.shape[1] < length:
                out[b, :, seg.shape[1]:] = seg[:, -1:]
        return out


def spread(songs: list[Song], limit: int) -> list[int]:
    """Indices of at most ``limit`` songs (0 = all), taken round-robin over the singers (sorted by name,
    each singer's songs in the given order): a subset that keeps every singer while there is room."""
    if limit <= 0 or len(songs) <= limit:
        return list(range(len(songs)))
    by_singer: dict[str, list[int]] = {}
    for i, s in enumerate(songs):
        by_singer.setdefault(s.singer, []).append(i)
    queues = [by_singer[k] for k in sorted(by_singer)]
    out: list[int] = []
    depth = 0
    while len(out) < limit:
        for q in queues:
            if depth < len(q) and len(out) < limit:
                out.append(q[depth])
        depth += 1
    return sorted(out)


def epoch_order(n: int, batch: int, steps: int, seed: int, epoch: int, rank: int = 0,
                world: int = 1) -> np.ndarray:
    """[steps, batch] song indices for this rank: shuffled passes over ``n`` songs, no song twice in a
    batch when ``n >= batch * world``; every rank draws the same global order and takes its slice."""
    rng = np.random.default_rng([seed, epoch, 7])
    need = steps * batch * world
    order = np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])[:need]
    return order.reshape(steps, world, batch)[:, rank]


def steps_per_epoch(n_songs: int, batch: int, configured: int, world: int = 1) -> int:
    """0 in vocal.yaml = one crop per training song per epoch (at least one step)."""
    return configured if configured > 0 else max(1, n_songs // (batch * world))


class CropBatches(IterableDataset):
    """One epoch of batches ``{"idx": [B], "views": [V, B, n_mels, length]}``: V crops of each song at
    independent random starts (V=2: anchor and positive for contrastive; V=1 for the autoencoder)."""

    def __init__(self, bank: MelBank, order: np.ndarray, length: int, views: int, seed: int, epoch: int,
                 rank: int = 0) -> None:
        self.bank, self.order, self.length, self.views = bank, order, length, views
        rng = np.random.default_rng([seed, epoch, rank, 11])
        self.starts = np.stack([np.stack([bank.random_starts(row, length, rng) for _ in range(views)])
                                for row in order]) if len(order) else np.zeros((0, views, 0), np.int64)

    def __len__(self) -> int:
        return len(self.order)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = self.order[step]
        views = np.stack([self.bank.crops(idx, self.starts[step, v], self.length) for v in range(self.views)])
        return {"idx": torch.from_numpy(idx.copy()), "views": torch.from_numpy(views)}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        first, every = (0, 1) if info is None else (info.id, info.num_workers)
        for step in range(first, len(self.order), every):
            yield self.batch(step)


def loader(ds: CropBatches, workers: int, pin: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Batches in step order; with workers > 0 they are read in parallel processes (round-robin)."""
    if workers <= 0:
        return iter(ds)
    return iter(DataLoader(ds, batch_size=None, num_workers=workers, pin_memory=pin,
                           persistent_workers=False, prefetch_factor=2))
