"""Balanced selection: exactly N songs per singer, and train/val/test splits within each singer.

Why: with very different song counts per singer, or songs of different lengths, the contrastive loss
did not converge in the research team's runs; exactly 30 full-length songs per singer fixed it. Songs
too short for the window are simply never eligible, so a singer's other songs take their place.
Pure functions over catalog rows; deterministic for a seed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from vocalcli.config import BalanceConfig
from vocalcli.errors import VocalError


@dataclass
class Dropped:
    singer: str
    eligible: int
    total: int
    reasons: dict[str, int]  # status -> count of the singer's songs that were not eligible


@dataclass
class BalanceResult:
    rows: list[dict[str, str]]  # song_id, singer, split
    kept_singers: list[str]
    dropped: list[Dropped]
    replaced: dict[str, int] = field(default_factory=dict)  # singer -> songs not ok, replaced by others
    holdout: list[str] = field(default_factory=list)

    def split_counts(self) -> dict[str, int]:
        out = {"train": 0, "val": 0, "test": 0}
        for r in self.rows:
            out[r["split"]] += 1
        return out


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator per (seed, key): a singer's choice does not change when other singers are added."""
    digest = hashlib.sha256(":".join([str(seed), *keys]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def split_sizes(n: int, train: float, val: float, test: float) -> tuple[int, int, int]:
    """Largest-remainder rounding, with every split non-empty whenever n >= 3 and its fraction > 0."""
    fracs = np.array([train, val, test], dtype=float)
    raw = fracs * n
    sizes = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - sizes), kind="stable")[: n - sizes.sum()]:
        sizes[i] += 1
    if n >= 3:
        for i in range(3):
            if fracs[i] > 0 and sizes[i] == 0:
                sizes[int(np.argmax(sizes))] -= 1
                sizes[i] += 1
    return int(sizes[0]), int(sizes[1]), int(sizes[2])


def balance(catalog: list[dict[str, str]], cfg: BalanceConfig, seed: int,
            songs_per_singer: int | None = None, holdout_singers: int | None = None,
            holdout: list[str] | None = None) -> BalanceResult:
    """Choose exactly N 'ok' songs per singer and assign splits; singers short of N are dropped.

    ``holdout`` names the singers put entirely into the test split (else ``holdout_singers`` random ones);
    a name that is not a singer of the catalog is a VocalError.
    """
    n = songs_per_singer if songs_per_singer is not None else cfg.songs_per_singer
    k_hold = holdout_singers if holdout_singers is not None else cfg.holdout_singers
    named = list(holdout) if holdout else list(cfg.holdout)
    by_singer: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in catalog:
        if r.get("singer"):  # loose files and links outside singer folders are listed by prepare, not here
            by_singer[r["singer"]].append(r)
    chosen: dict[str, list[str]] = {}
    dropped, replaced = [], {}
    for singer in sorted(by_singer):
        songs = by_singer[singer]
        ok = sorted(r["song_id"] for r in songs if r["status"] == "ok")
        not_ok: dict[str, int] = defaultdict(int)
        for r in songs:
            if r["status"] != "ok":
                not_ok[r["status"]] += 1
        if len(ok) < n:
            dropped.append(Dropped(singer, len(ok), len(songs), dict(not_ok)))
            continue
        pick = _rng(seed, "choose", singer).permutation(len(ok))[:n]
        chosen[singer] = [ok[i] for i in sorted(pick)]
        if not_ok:
            replaced[singer] = sum(not_ok.values())
    kept = sorted(chosen)
    if named:
        unknown = sorted(set(named) - set(by_singer))
        if unknown:
            raise VocalError(f"held-out singer {unknown[0]!r} (--holdout / balance.holdout) is not in the "
                             f"catalog; its singers: {', '.join(sorted(by_singer))}")
        held = sorted(set(named) & set(kept))
    else:
        if k_hold >= len(kept) and k_hold > 0:
            k_hold = max(len(kept) - 1, 0)
        held = sorted(kept[i] for i in _rng(seed, "holdout").permutation(len(kept))[:k_hold])
    rows = []
    for singer in kept:
        ids = chosen[singer]
        if singer in held:
            splits = ["test"] * n
        else:
            order = _rng(seed, "split", singer).permutation(n)
            tr, va, _ = split_sizes(n, cfg.split.train, cfg.split.val, cfg.split.test)
            splits = [""] * n
            for rank, i in enumerate(order):
                splits[i] = "train" if rank < tr else "val" if rank < tr + va else "test"
        rows += [{"song_id": s, "singer": singer, "split": sp} for s, sp in zip(ids, splits, strict=True)]
    return BalanceResult(rows, kept, dropped, replaced, held)
