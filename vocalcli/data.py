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

from vocalcli import catalog, loudness
from vocalcli import project as project_mod
from vocalcli.errors import MissingArtifact


@dataclass(frozen=True)
class Song:
    song_id: str
    singer: str
    split: str  # train / val / test, or "" for catalog songs outside balanced.csv
    path: Path  # absolute path of the .npy log-mel
    residue: Path | None = None  # absolute path of the residue log-mel, when prepare stored one
    pitch: Path | None = None  # absolute path of the f0 track on the mel's frames (pitch/<id>.npy)


def catalog_songs(project: project_mod.Project) -> list[Song]:
    """Every `ok` song of catalog.csv, in catalog order."""
    songs = []
    for r in catalog.ok_rows(project):
        if r.get("mel"):
            res = project.root / r["residue"] if r.get("residue") else None
            pitch = project.root / r["pitch"] if r.get("pitch") else None
            songs.append(Song(r["song_id"], r.get("singer", ""), "", project.root / r["mel"], res, pitch))
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
            out.append(Song(s.song_id, r.get("singer") or s.singer, split, s.path, s.residue, s.pitch))
    return out


class MelBank:
    """Lazily memory-mapped mels of ``songs``; ``frames[i]`` is the length of song i's `view` (known from
    the header). ``loud_fraction`` < 1: crops and views read only the loudest fraction of each song's
    frames, joined in time order (vocalcli.loudness; the timbre encoder's ``contrastive.loud_fraction``)."""

    def __init__(self, songs: list[Song], loud_fraction: float = 1.0) -> None:
        self.songs = songs
        self.loud_fraction = float(loud_fraction)
        self._maps: dict[int, np.ndarray] = {}
        self._keep: dict[int, np.ndarray] = {}  # song -> its loudest frames (when loud_fraction < 1)
        shapes = [self.mel(i).shape for i in range(len(songs))]
        self.n_mels = shapes[0][0] if shapes else 0
        self.frames = np.array([loudness.kept_frames(s[1], self.loud_fraction) for s in shapes], dtype=np.int64)
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

    def _kept(self, i: int) -> np.ndarray | None:
        """Song i's loudest frames (None = every frame), found on first use."""
        if self.loud_fraction >= 1.0:
            return None
        keep = self._keep.get(i)
        if keep is None:
            # int32: a seed-scale bank holds 4,500 of these in every loader worker
            keep = self._keep[i] = loudness.loudest_frames(self.mel(i), self.loud_fraction).astype(np.int32)
        return keep

    def view(self, i: int) -> np.ndarray:
        """Song i as the encoder reads it: the whole mel, or its loudest frames [n_mels, frames[i]]."""
        keep = self._kept(i)
        return self.mel(i) if keep is None else self.mel(i)[:, keep]

    def random_starts(self, idx: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform crop starts [B] for songs ``idx`` (0 where the song is shorter than ``length``)."""
        room = np.maximum(self.frames[idx] - length, 0)
        return (rng.random(len(idx)) * (room + 1)).astype(np.int64)

    def crops(self, idx: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        """[B, n_mels, length] float32 crops of the songs' views; shorter views are edge-padded."""
        out = np.empty((len(idx), self.n_mels, length), dtype=np.float32)
        for b, (i, s) in enumerate(zip(idx.tolist(), starts.tolist(), strict=True)):
            m, keep = self.mel(i), self._kept(i)
            seg = m[:, s: s + length] if keep is None else m[:, keep[s: s + length]]
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


@dataclass(frozen=True)
class ResiduePlan:
    """Residues borrowed from other songs, laid over the two contrastive views (contrastive.residue_*).

    ``bank`` holds the residue mels of the training songs that have one, ``owner[j]`` is the index of
    residue j's song in the training bank (a crop never borrows its own song's residue). Each view gets
    a residue crop at a level drawn uniformly from ``db`` (dB relative to its own mixture), or none
    with probability ``none_p``. ``negatives`` says what view 1 (the key side) of crop i carries:
    ``none``: a residue of its own random draw; ``shared``: the band (donor song and level) that view 0
    of crop i-1 carries, so a crop's anchor has a negative key with its band; ``own``: the residue of
    crop i-1's *own* song, so the band that leaks into a vocal estimate marks one of its negatives.
    """

    bank: MelBank
    owner: np.ndarray  # [len(bank)] int
    none_p: float
    db: tuple[float, float]
    negatives: str = "none"


class CropBatches(IterableDataset):
    """One epoch of batches ``{"idx": [B], "views": [V, B, n_mels, length]}``: V crops of each song at
    independent random starts (V=2: anchor and positive for contrastive; V=1 for the autoencoder).

    Contrastive options: ``groups`` [n_songs] (song -> singer index): view 1 is read from another song of
    the same group (the song itself when it is its group's only one). ``residues``: adds
    ``"residues"`` [2, B, n_mels, residue_length] and ``"residue_db"`` [2, B] (-inf = no residue) for
    views 0 and 1. Both are drawn from their own random streams, so the plain crops do not change.
    """

    def __init__(self, bank: MelBank, order: np.ndarray, length: int, views: int, seed: int, epoch: int,
                 rank: int = 0, groups: np.ndarray | None = None, residues: ResiduePlan | None = None,
                 residue_length: int = 0) -> None:
        self.bank, self.order, self.length, self.views = bank, order, length, views
        rng = np.random.default_rng([seed, epoch, rank, 11])
        self.starts = np.stack([np.stack([bank.random_starts(row, length, rng) for _ in range(views)])
                                for row in order]) if len(order) else np.zeros((0, views, 0), np.int64)
        self.positive_songs = None
        if groups is not None and views >= 2 and len(order):
            self.positive_songs = _same_group_songs(order, np.asarray(groups),
                                                    np.random.default_rng([seed, epoch, rank, 13]))
            rng_p = np.random.default_rng([seed, epoch, rank, 17])
            self.starts[:, 1] = np.stack([bank.random_starts(row, length, rng_p) for row in self.positive_songs])
        self.residues, self.residue_length = residues, residue_length or length
        if residues is not None and len(order):
            self.donors, self.residue_starts, self.residue_db = _draw_residues(
                order, residues, self.residue_length, np.random.default_rng([seed, epoch, rank, 19]))

    def __len__(self) -> int:
        return len(self.order)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = self.order[step]
        songs = [idx] * self.views
        if self.positive_songs is not None:
            songs[1] = self.positive_songs[step]
        views = np.stack([self.bank.crops(songs[v], self.starts[step, v], self.length) for v in range(self.views)])
        out = {"idx": torch.from_numpy(idx.copy()), "views": torch.from_numpy(views)}
        if self.residues is not None:
            res = np.stack([self.residues.bank.crops(self.donors[step, v], self.residue_starts[step, v],
                                                     self.residue_length) for v in range(2)])
            out["residues"] = torch.from_numpy(res)
            out["residue_db"] = torch.from_numpy(self.residue_db[step].astype(np.float32))
        return out

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        first, every = (0, 1) if info is None else (info.id, info.num_workers)
        for step in range(first, len(self.order), every):
            yield self.batch(step)


def _same_group_songs(order: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[steps, B]: for each song of ``order``, another song of its group (itself when it is alone)."""
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    out = np.empty_like(order)
    for k, i in np.ndenumerate(order):
        others = members[groups[i]][members[groups[i]] != i]
        out[k] = rng.choice(others) if len(others) else i
    return out


def _draw_residues(order: np.ndarray, plan: ResiduePlan, length: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(donors [steps, 2, B] residue-bank rows, starts [steps, 2, B], level dB [steps, 2, B]) for
    ``order`` [steps, B]; a crop never gets its own song's residue (a lone donor is used anyway, at -inf)."""
    steps, b = order.shape
    n = len(plan.bank)
    lo, hi = plan.db

    def pick(song: int) -> int:
        ok = np.flatnonzero(plan.owner != song)
        return int(rng.choice(ok)) if len(ok) else -1

    own = {int(song): j for j, song in enumerate(plan.owner)}
    donors = np.zeros((steps, 2, b), np.int64)
    db = rng.uniform(lo, hi, (steps, 2, b))
    db[rng.random((steps, 2, b)) < plan.none_p] = -np.inf
    for s in range(steps):
        donors[s, 0] = [pick(i) for i in order[s]]
        if plan.negatives == "shared":
            donors[s, 1], db[s, 1] = np.roll(donors[s, 0], 1), np.roll(db[s, 0], 1)
        elif plan.negatives == "own":
            donors[s, 1] = [own.get(int(i), -1) for i in np.roll(order[s], 1)]
        else:
            donors[s, 1] = [pick(i) for i in order[s]]
        for v in (0, 1):  # a rolled donor may be the crop's own song (or have no residue): draw another
            for k in np.flatnonzero((donors[s, v] < 0) | (plan.owner[np.maximum(donors[s, v], 0)] == order[s])):
                donors[s, v, k] = pick(order[s, k])
    bad = donors < 0
    donors[bad], db[bad] = 0, -np.inf
    starts = np.stack([[plan.bank.random_starts(donors[s, v], length, rng) for v in (0, 1)]
                       for s in range(steps)]) if n else np.zeros((steps, 2, b), np.int64)
    return donors, starts, db


def loader(ds: CropBatches, workers: int, pin: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Batches in step order; with workers > 0 they are read in parallel processes (round-robin)."""
    if workers <= 0:
        return iter(ds)
    return iter(DataLoader(ds, batch_size=None, num_workers=workers, pin_memory=pin,
                           persistent_workers=False, prefetch_factor=2))
