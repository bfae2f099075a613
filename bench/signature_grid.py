"""Choose the cepstral signature's frame settings on some voices, measure them on the one left out.

The signature (vocalcli/cepstral.py) is training-free, so every setting of (timbre.loud_fraction,
timbre.smooth_frames) is scored at once by 1-NN leave-one-out singer-ID over every song of each project
(vocalcli.evaluate's ``loo_hits``). For every singer S: the setting with the best mean score over the
projects on the *other* singers' songs is chosen, and scored on S's songs. One setting for all projects
(a default has to serve stems, mixtures and band mixes alike).

    python bench/signature_grid.py PROJECT [PROJECT ...]      # e.g. stems, mixtures, band mixes

Prints, per project: today's setting (all frames, no smoothing), the default's score on every voice,
the mean score on the voices each fold's choice was made on ("chosen on") and the pooled score on the
voices it was not ("not chosen on"), and MFCC mean+std in the same run.

    python bench/signature_grid.py --per-singer 5 PROJECT [PROJECT ...]

also scores today's setting, the default and MFCC with only K songs per singer, as a smaller test set
has them (each song then has K - 1 songs of its singer to find, not all of them): the mean over 300
random draws of K songs of every singer that has K, with the 5-95 % range of the draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GRID = [(q, s) for q in (1.0, 0.7, 0.5, 0.3) for s in (1, 4, 8, 16)]
"""(loud_fraction, smooth_frames) tried; (1.0, 1) is the signature before these settings existed."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("projects", nargs="+", type=Path, help="prepared projects (every 'ok' catalog song is used)")
    ap.add_argument("--per-singer", type=int, default=0, metavar="K",
                    help="also score with K songs per singer (random draws; 0 = off)")
    a = ap.parse_args()

    from vocalcli import catalog, cepstral
    from vocalcli import project as project_mod
    from vocalcli.config import TimbreConfig
    from vocalcli.evaluate import loo_hits, mfcc_stats, zscore_stats

    default = TimbreConfig()
    key = (default.loud_fraction, default.smooth_frames)  # one of GRID
    hits: dict[str, dict[tuple[float, int], np.ndarray]] = {}
    labels: dict[str, np.ndarray] = {}
    mfcc: dict[str, float] = {}
    feats: dict[str, dict[str, np.ndarray]] = {}
    for path in a.projects:
        proj = project_mod.Project(path.resolve())
        rows = [r for r in catalog.ok_rows(proj) if r.get("singer")]
        mels = [np.load(proj.root / r["mel"]).astype(np.float32) for r in rows]
        y = np.array([r["singer"] for r in rows])
        name = str(path)
        labels[name] = y
        sigs = {(q, s): np.stack([cepstral.signature(m, default.cepstra, q, s) for m in mels]) for q, s in GRID}
        hits[name] = {g: loo_hits(x, y) for g, x in sigs.items()}
        mf = np.stack([mfcc_stats(m) for m in mels])
        mu, sd = zscore_stats(mf)
        mfcc[name] = float(loo_hits((mf - mu) / sd, y).mean())
        if a.per_singer:
            feats[name] = {"today": sigs[(1.0, 1)], "default": sigs[key], "MFCC": mf}
    singers = sorted(set.intersection(*(set(v.tolist()) for v in labels.values())))
    chosen_on: dict[str, list[float]] = {n: [] for n in hits}
    not_chosen_on: dict[str, list[np.ndarray]] = {n: [] for n in hits}
    for fold in singers:
        def score(g: tuple[float, int], fold: str = fold) -> float:
            return float(np.mean([hits[n][g][labels[n] != fold].mean() for n in hits]))

        best = max(GRID, key=score)  # ties: the first listed (all frames, no smoothing first)
        print(f"{fold}: chosen on the others loud_fraction={best[0]:g} smooth_frames={best[1]}")
        for n in hits:
            chosen_on[n].append(float(hits[n][best][labels[n] != fold].mean()))
            not_chosen_on[n].append(hits[n][best][labels[n] == fold])
    print(f"\n{'project':40s} {'today':>6s} {'default':>8s} {'chosen on':>10s} {'not chosen on':>14s} {'MFCC':>6s}")
    for n in hits:
        print(f"{n:40s} {hits[n][(1.0, 1)].mean():6.3f} {hits[n][key].mean():8.3f} {np.mean(chosen_on[n]):10.3f} "
              f"{np.concatenate(not_chosen_on[n]).mean():14.3f} {mfcc[n]:6.3f}")
    if a.per_singer:
        per_singer(feats, labels, a.per_singer)


def per_singer(feats: dict[str, dict[str, np.ndarray]], labels: dict[str, np.ndarray], k: int,
               draws: int = 300) -> None:
    """Leave-one-out 1-NN with K songs of each singer, mean and 5-95 % range over random draws."""
    from vocalcli.evaluate import loo_hits, zscore_stats

    print(f"\n{k} songs per singer, {draws} draws: mean [5 %, 95 %]")
    rng = np.random.default_rng(0)
    for n, by_kind in feats.items():
        y = labels[n]
        singers = [s for s in sorted(set(y.tolist())) if (y == s).sum() >= k]
        if len(singers) < 2:
            print(f"{n}: fewer than 2 singers with {k} songs")
            continue
        scores: dict[str, list[float]] = {kind: [] for kind in by_kind}
        for _ in range(draws):
            idx = np.concatenate([rng.choice(np.flatnonzero(y == s), k, replace=False) for s in singers])
            for kind, x in by_kind.items():
                x = x[idx]
                if kind == "MFCC":  # z-scored over the songs at hand, as evaluate does
                    mu, sd = zscore_stats(x)
                    x = (x - mu) / sd
                scores[kind].append(float(loo_hits(x, y[idx]).mean()))
        print(f"{n} ({len(singers)} singers): " + "  ".join(
            f"{kind} {np.mean(v):.3f} [{np.percentile(v, 5):.2f}, {np.percentile(v, 95):.2f}]"
            for kind, v in scores.items()))


if __name__ == "__main__":
    main()
