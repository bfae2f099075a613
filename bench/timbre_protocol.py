"""Judge timbre choices on voices they were not made on: leave-one-singer-out over the choice itself.

For every singer S of a prepared project (a "fold"): the contrastive encoder is trained without any song
of S (`vocal balance --holdout S`: S's songs all go to the test split), once per candidate recipe; every
balanced song is embedded (encoder vector, cepstral signature, MFCC mean+std); each candidate recipe and
timbre-vector weighting is scored by 1-NN leave-one-out singer-ID over all songs (vocalcli.evaluate's
``loo_hits``), and the fold's choice is the one with the best score on the *other* singers' songs. The
report gives, per fold and pooled over folds, the score on the voices the choice was made on ("seen")
and on S ("unseen"), next to MFCC and the signature alone (training-free, the same in every fold).

    python bench/timbre_protocol.py --project P --out DIR                # every singer, default candidates
    python bench/timbre_protocol.py --project P --out DIR --folds kal,lp --candidates cands.json
    python bench/timbre_protocol.py --project P --out DIR --split split.csv   # own song,singer,split table

Candidates: JSON {name: {dotted vocal.yaml key: value}}; default: today's recipe without residues
("plain") and the project's vocal.yaml ("default"). Runs are cached in DIR/<candidate>/<fold>.npz, so an
interrupted bench resumes and a new candidate costs only its own trainings; DIR/<candidate>/<fold>.pt
keeps the fold's trained encoder (its state dict; the shape is vocal.yaml's with the candidate's keys).
CPU: about 3 CPU-minutes per training at the default sizes (one thread; 2026-12-02).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CANDIDATES = {"plain": {"contrastive.residue_none": 1.0}, "default": {}}
WEIGHTS = [(1.0, 0.0), (1.0, 1.0), (1.0, 2.0), (1.0, 4.0), (0.0, 1.0)]
"""(encoder_weight, cepstral_weight) of the timbre vector tried in every fold (vocalcli.cepstral.fuse)."""


def split_rows(project, split_csv: Path | None, fold: str) -> list[dict[str, str]]:
    """balanced.csv rows of a fold: S's songs all in test. From --split, else `vocal balance --holdout S`."""
    from vocalcli import balance, catalog
    from vocalcli import project as project_mod

    if split_csv is not None:
        rows = project_mod.read_csv(split_csv)
        return [{**r, "split": "test" if r["singer"] == fold else r["split"]} for r in rows]
    cfg = project.load_config()
    return balance.balance(catalog.read(project), cfg.balance, cfg.seed, holdout=[fold] if fold else None).rows


def fold_project(project, work: Path, rows: list[dict[str, str]]):
    """A project sharing the source's mels/residues/catalog, with its own balanced.csv and checkpoints."""
    from vocalcli import project as project_mod

    work.mkdir(parents=True, exist_ok=True)
    for name in ("mels", "residues"):
        if (project.root / name).exists() and not (work / name).exists():
            os.symlink(project.root / name, work / name)
    for name in ("vocal.yaml", "catalog.csv"):
        (work / name).write_bytes((project.root / name).read_bytes())
    project_mod.write_csv(work / "balanced.csv", rows, project_mod.BALANCED_FIELDS)
    return project_mod.Project(work)


def run_fold(project, out: Path, name: str, over: dict, fold: str, split_csv: Path | None) -> Path:
    """Train the encoder of one candidate without ``fold``'s songs; save every song's encoder vector."""
    import torch

    from vocalcli import config as config_mod
    from vocalcli import training
    from vocalcli.device import seed_everything
    from vocalcli.embed import timbre_of
    from vocalcli.loudness import loud_view

    dest = out / name / f"{fold}.npz"
    if dest.exists():
        return dest
    rows = split_rows(project, split_csv, fold)
    fp = fold_project(project, out / "folds" / fold, rows)
    cfg = config_mod.override(fp.load_config(), over)
    dev = torch.device("cpu")
    seed_everything(cfg.seed)
    task = training.ContrastiveTask(fp, cfg, dev)
    task.validate = lambda loss: {"score": -loss}  # no labels in training, not even for validation
    t0 = time.perf_counter()
    training.fit(task, cfg, dev, checkpoints=None, run_root=None)
    seconds = time.perf_counter() - t0
    model = task.model.eval()
    ids = [r["song_id"] for r in rows]
    hop = max(1, round(cfg.contrastive.extract_hop_s * cfg.audio.frame_rate))
    frac = cfg.contrastive.loud_fraction  # what the encoder reads of a song, as `vocal embed` gives it
    vec = np.stack([timbre_of(model, loud_view(np.load(fp.mel_path(i)), frac), task.crop, dev, hop=hop) for i in ids])
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), dest.with_suffix(".pt"))  # for analyses of the trained net itself
    np.savez(dest, ids=np.array(ids), enc=vec, trained=np.array([s.song_id for s in task.songs]),
             meta=json.dumps({"candidate": name, "over": over, "fold": fold, "train_s": seconds,
                              "notes": task.notes}))
    return dest


def features(project, out: Path, rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
    """Training-free features of every song: cepstral signature and z-scored MFCC mean+std."""
    from vocalcli import cepstral
    from vocalcli.evaluate import mfcc_stats, zscore_stats

    cache = out / "features.npz"
    ids = [r["song_id"] for r in rows]
    if cache.exists():
        z = np.load(cache)
        if list(z["ids"]) == ids:
            return {k: z[k] for k in z.files}
    cfg = project.load_config()
    mels = [np.load(project.mel_path(i)).astype(np.float32) for i in ids]
    sig = np.stack([cepstral.song_signature(m, cfg.timbre) for m in mels])
    mf = np.stack([mfcc_stats(m) for m in mels])
    mu, sd = zscore_stats(mf)
    f = {"ids": np.array(ids), "singer": np.array([r["singer"] for r in rows]), "sig": sig, "mfcc": (mf - mu) / sd}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **f)
    return f


def fuse(enc: np.ndarray, sig: np.ndarray, we: float, wc: float) -> np.ndarray:
    """The timbre vector with these part weights, as `vocal embed` joins it (vocalcli.cepstral.fuse)."""
    from vocalcli.cepstral import fuse as join
    from vocalcli.config import TimbreConfig

    return join(enc, sig, TimbreConfig(encoder_weight=we, cepstral_weight=wc))


def analyse(f: dict[str, np.ndarray], runs: dict[str, dict[str, Path]], labelled: set[str] = frozenset()) -> dict:
    """Per fold: every (candidate, weights) scored on seen and unseen voices; the choice made on seen.

    Candidates in ``labelled`` learned from singer labels: their seen score counts only songs outside the
    train split, and they are reported but not chosen (an option, not a default)."""
    from vocalcli.evaluate import loo_hits

    y = f["singer"]
    mfcc, sig = loo_hits(f["mfcc"], y), loo_hits(f["sig"], y)
    folds = sorted({fold for per in runs.values() for fold in per})
    report: dict = {"folds": {}, "mfcc": float(mfcc.mean()), "signature": float(sig.mean())}
    pooled: dict[str, list] = {}
    for fold in folds:
        unseen = y == fold
        rows = {}
        for name, per in runs.items():
            if fold not in per:
                continue
            z = np.load(per[fold])
            seen = ~unseen & ~np.isin(f["ids"], z["trained"]) if name in labelled else ~unseen
            for we, wc in WEIGHTS:
                hits = loo_hits(fuse(z["enc"], f["sig"], we, wc), y)
                rows[f"{name} w={we:g}:{wc:g}"] = {"seen": float(hits[seen].mean()),
                                                   "unseen": float(hits[unseen].mean()), "hits": hits,
                                                   "choosable": name not in labelled}
        if not rows:
            continue
        # ties: the first listed (simplest) wins; label-trained candidates are reported, never chosen
        choosable = [k for k in rows if rows[k]["choosable"]]
        best = max(choosable, key=lambda k: rows[k]["seen"]) if choosable else None
        report["folds"][fold] = {"chosen": best, "seen": rows[best]["seen"] if best else float("nan"),
                                 "unseen": rows[best]["unseen"] if best else float("nan"),
                                 "mfcc_unseen": float(mfcc[unseen].mean()), "sig_unseen": float(sig[unseen].mean()),
                                 "all": {k: {"seen": v["seen"], "unseen": v["unseen"]} for k, v in rows.items()}}
        if best:
            pooled.setdefault("chosen", []).append(rows[best]["hits"][unseen])
        for k, v in rows.items():
            pooled.setdefault(k, []).append(v["hits"][unseen])
    report["pooled_unseen"] = {k: float(np.concatenate(v).mean()) for k, v in pooled.items()
                               if len(v) == len(report["folds"])}
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, required=True, help="a prepared project (balance settings from it)")
    ap.add_argument("--out", type=Path, required=True, help="work and cache folder")
    ap.add_argument("--split", type=Path, help="song_id,singer,split CSV to use instead of vocal balance")
    ap.add_argument("--candidates", type=Path, help="JSON {name: {dotted key: value}}")
    ap.add_argument("--folds", help="comma-separated singers (default: every singer)")
    ap.add_argument("--analyse-only", action="store_true", help="report on the cached runs, train nothing")
    a = ap.parse_args()

    import torch

    from vocalcli import project as project_mod

    torch.set_num_threads(1)
    project = project_mod.Project(a.project.resolve())
    cands = json.loads(a.candidates.read_text()) if a.candidates else DEFAULT_CANDIDATES
    rows = split_rows(project, a.split, "")
    singers = sorted({r["singer"] for r in rows})
    folds = a.folds.split(",") if a.folds else singers
    f = features(project, a.out, rows)
    runs: dict[str, dict[str, Path]] = {name: {} for name in cands}
    for fold in folds:
        for name, over in cands.items():
            path = a.out / name / f"{fold}.npz"
            if not a.analyse_only:
                t0 = time.perf_counter()
                path = run_fold(project, a.out, name, over, fold, a.split)
                print(f"{fold} {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            if path.exists():
                runs[name][fold] = path
    labelled = {name for name, over in cands.items() if over.get("contrastive.positives") == "singer"}
    rep = analyse(f, runs, labelled)
    print(json.dumps(rep, indent=1))
    print(f"{'fold':>8} {'chosen on the other voices':>32} {'seen':>6} {'unseen':>7} {'MFCC':>6} {'sig.':>6}",
          file=sys.stderr)
    for fold, r in rep["folds"].items():
        print(f"{fold:>8} {r['chosen'] or '-':>32} {r['seen']:6.2f} {r['unseen']:7.2f} {r['mfcc_unseen']:6.2f} "
              f"{r['sig_unseen']:6.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
