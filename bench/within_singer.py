"""Does the signature's within-singer normalisation carry to voices it never learned from?

`vocal embed` learns the normalisation (vocalcli/cepstral.py ``within_singer``) from the catalog's singer
folders; this measures it on singers whose songs it did not learn from, next to the plain signature,
in the same run, on prepared projects (every 'ok' song with a singer; training-free, seconds):

    python bench/within_singer.py PROJECT [PROJECT ...] [--per-singer 5]

1. **Leave one voice out**, as `vocal evaluate` scores it: each singer's songs are queries, every song
   is a candidate, and the normalisation is learned from the *other* singers' songs of the same project.
   Also per fold: the shrink chosen on the other voices (their leave-one-voice-out score, every project),
   scored on the voice left out.
   MFCC mean+std, plain and with the same normalisation, is the baseline: the normalisation is a
   generic backend, so the signature has to beat MFCC given the same.
2. **Disjoint voices**, stricter: for every way of taking 2 (or 3) voices as the test catalog, learned
   from the remaining voices only, 1-NN among the test voices' songs alone (no candidate's singer was
   ever learned from).

With ``--per-singer K`` each figure is also the mean over random draws of K songs per singer (issue 9
scores 5 per singer), the normalisation still learned from all songs of the learning voices.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHRINKS = (0.03, 0.1, 0.3, 1.0)
"""Shrinks tried; 1.0 = no weighing, only centring on the learning songs' mean."""


def load(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({'signature': [N, 78] at today's timbre settings, 'MFCC': [N, 40] mean+std z-scored over the
    project}, singers [N]) of a prepared project."""
    from vocalcli import catalog, cepstral
    from vocalcli import project as project_mod
    from vocalcli.evaluate import mfcc_stats, zscore_stats

    proj = project_mod.Project(path.resolve())
    cfg = proj.load_config().timbre
    rows = [r for r in catalog.ok_rows(proj) if r.get("singer") and r.get("mel")]
    mels = [np.load(proj.root / r["mel"]) for r in rows]
    mf = np.stack([mfcc_stats(m) for m in mels])
    mu, sd = zscore_stats(mf)
    feats = {"signature": np.stack([cepstral.song_signature(m, cfg) for m in mels]), "MFCC": (mf - mu) / sd}
    return feats, np.array([r["singer"] for r in rows])


def draws(y: np.ndarray, voices: list[str], k: int, n: int, seed: int = 0) -> list[np.ndarray]:
    """n index sets of k songs of each voice (all songs of the voices when k = 0)."""
    if k <= 0:
        return [np.flatnonzero(np.isin(y, voices))]
    rng = np.random.default_rng(seed)
    return [np.concatenate([rng.choice(np.flatnonzero(y == v), k, replace=False) for v in voices])
            for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("projects", nargs="+", type=Path)
    ap.add_argument("--per-singer", type=int, default=0, metavar="K", help="also score K songs per singer")
    ap.add_argument("--draws", type=int, default=100)
    a = ap.parse_args()

    from vocalcli.cepstral import within_singer
    from vocalcli.config import TimbreConfig
    from vocalcli.evaluate import loo_hits

    default = TimbreConfig().within_singer_shrink
    data = {str(p): load(p) for p in a.projects}
    sizes = [0] + ([a.per_singer] if a.per_singer else [])

    def transformed(x: np.ndarray, y: np.ndarray, learn: np.ndarray, shrink: float | None) -> np.ndarray:
        if shrink is None:
            return x
        w = within_singer(x[learn], y[learn].tolist(), shrink)
        return x if w is None else w.apply(x)

    def voice_rate(x: np.ndarray, y: np.ndarray, v: str, shrink: float | None, sets: list[np.ndarray]) -> float:
        """Voice v's leave-one-out hit rate, the normalisation learned without v, mean over the draws."""
        z = transformed(x, y, y != v, shrink)
        return float(np.mean([loo_hits(z[i], y[i], np.flatnonzero(y[i] == v)).mean() for i in sets]))

    print("1. leave one voice out (queries: the voice; candidates: every song; learned: the other voices)")
    score: dict[tuple[str, int, float | None, str], float] = {}  # (project, K, shrink, voice) -> hit rate
    mfcc: dict[tuple[str, int, float | None], float] = {}  # the baseline, plain and at the default shrink
    for name, (feats, y) in data.items():
        x = feats["signature"]
        voices = sorted(set(y.tolist()))
        usable = [v for v in voices if (y == v).sum() >= max(sizes)]
        for k in sizes:
            sets = draws(y, usable, k, a.draws)
            for shrink in (None, default):
                mfcc[(name, k, shrink)] = float(np.mean([voice_rate(feats["MFCC"], y, v, shrink, sets)
                                                         for v in usable]))
            for shrink in (None, *SHRINKS):
                for v in usable:
                    score[(name, k, shrink, v)] = voice_rate(x, y, v, shrink, sets)
    for name in data:
        voices = sorted({v for (n, _, _, v) in score if n == name})  # figures: mean over voices
        for k in sizes:
            cells = []
            for shrink in (None, *SHRINKS):
                cells.append(f"{'plain' if shrink is None else f'shrink {shrink:g}'} "
                             f"{np.mean([score[(name, k, shrink, v)] for v in voices]):.3f}")
            # the shrink chosen on the other voices (every project), scored on the voice left out
            chosen = []
            for v in voices:
                best = max(SHRINKS, key=lambda s, v=v: np.mean(
                    [score[(n, k, s, u)] for n in data for u in voices if u != v and (n, k, s, u) in score]))
                chosen.append(score[(name, k, best, v)])
            cells.append(f"chosen per fold {np.mean(chosen):.3f}; MFCC plain {mfcc[(name, k, None)]:.3f}, "
                         f"normalised {mfcc[(name, k, default)]:.3f}")
            print(f"  {name} {'all songs' if k == 0 else f'{k} per singer'}: " + ", ".join(cells))
            print("    per voice, plain -> default: " + ", ".join(
                f"{v} {score[(name, k, None, v)]:.2f}->{score[(name, k, default, v)]:.2f}" for v in voices))

    print("\n2. disjoint voices (candidates: the test voices only; learned: the other voices)")
    for name, (feats, y) in data.items():
        voices = sorted(set(y.tolist()))
        for n_test in (2, 3):
            if len(voices) - n_test < 2:
                continue
            for k in sizes:
                res = {(kind, s): [] for kind in feats for s in (None, default)}
                for test in itertools.combinations(voices, n_test):
                    test = list(test)
                    if min((y == v).sum() for v in test) < k:
                        continue
                    sets = draws(y, test, k, a.draws)
                    for kind, shrink in res:
                        z = transformed(feats[kind], y, ~np.isin(y, test), shrink)
                        res[(kind, shrink)].append(np.mean([loo_hits(z[i], y[i]).mean() for i in sets]))
                print(f"  {name} {n_test} test voices, {'all songs' if k == 0 else f'{k} per singer'}, "
                      f"{len(res[('MFCC', None)])} splits: " + ", ".join(
                          f"{kind} {'plain' if s is None else 'normalised'} {np.mean(v):.3f} (worst {np.min(v):.2f})"
                          for (kind, s), v in res.items()))


if __name__ == "__main__":
    main()
