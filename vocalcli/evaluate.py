"""How good are the embeddings? Every number next to a classical baseline computed in the same run.

Metrics (pure functions below, unit-tested on hand-computed toys):
- singer identification on the balanced test split given the train split: cosine 1-NN top-1 and a
  logistic-regression probe; same-singer retrieval mAP and verification EER among the test songs;
  1-NN leave-one-out over every balanced song (``loo_top1``; far more queries than a small test split),
  also for each part of the timbre vector (``_encoder``, ``_cepstral``: vocalcli/cepstral.py).
  Baseline: MFCC mean + std. The MFCCs are computed from the stored log-mel (natural log of mel power,
  converted to dB, then DCT: ``librosa.feature.mfcc(S=dB)``), i.e. from exactly the input the models
  saw, after the same MR removal; features are z-scored (train statistics) before cosine/probe.
- gender: balanced accuracy, leave-one-singer-out over labelled singers (robust with few singers);
  timbre embeddings vs the MFCC baseline.
- melody (with ``--melody-labels``): MAP of retrieving songs of the same melody among *other singers'*
  songs (same-singer songs are removed from the candidates, so a voice match cannot help). Baseline:
  chroma (librosa.feature.chroma_stft) of the re-decoded, MR-removed window, made key- and time-shift
  invariant by the magnitude of the 2-D Fourier transform of chroma patches (Bertin-Mahieux & Ellis
  2012), median over patches. Chroma needs audio: the songs are re-read from ``songs_dir`` recorded in
  prepare.json; without it the baseline is null and the report says why.
- index: recall@10 of Annoy against exact search (the baseline is exact search itself).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import project as project_mod
from vocalcli.config import Config, TimbreConfig
from vocalcli.console import ProgressFn
from vocalcli.errors import MissingArtifact, VocalError
from vocalcli.vectors import l2_rows


@dataclass(frozen=True)
class Metric:
    """One row of the report's table: a metric, its same-run baseline and how to read them."""

    key: str  # dotted key in the report
    baseline: str | None  # report key of its baseline; None = the reference is exact (recall vs exact search)
    baseline_label: str  # what the baseline is, for people
    higher_is_better: bool = True
    required: bool = False  # always in the report with its baseline (None when not measurable)


_MFCC = "MFCC mean+std"
METRICS = (
    Metric("singer_id.top1", "singer_id.top1_mfcc", _MFCC, required=True),
    Metric("singer_id.loo_top1", "singer_id.loo_top1_mfcc", _MFCC),
    Metric("singer_id.probe", "singer_id.probe_mfcc", _MFCC),
    Metric("singer_id.map", "singer_id.map_mfcc", _MFCC, required=True),
    Metric("singer_id.eer", "singer_id.eer_mfcc", _MFCC, higher_is_better=False, required=True),
    Metric("gender.balanced_accuracy", "gender.balanced_accuracy_mfcc", _MFCC, required=True),
    Metric("melody.map", "melody.map_chroma", "chroma 2D-FFT", required=True),
    Metric("index.recall_at_10", None, "exact search", required=True),
)
"""Every metric that has a baseline: the rows `vocal evaluate` prints, what the demo shows, and the
order in which both list them. A new metric is one row here plus its computation in a report below."""

REQUIRED_KEYS = tuple(k for m in METRICS if m.required for k in (m.key, m.baseline) if k)
"""Keys every report holds (None = not measurable here, the reason in ``notes``)."""
N_MFCC = 20
CHROMA_HOP = 2048  # samples at 16 kHz = 128 ms per chroma frame
CHROMA_PATCH = 64  # chroma frames per 2-D FFT patch (~8 s)


# ------------------------------------------------------------------------------------------- pure math
def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[Na, D] x [Nb, D] -> [Na, Nb] cosine similarities."""
    return l2_rows(a, np.float64) @ l2_rows(b, np.float64).T


def knn_top1(train_x: np.ndarray, train_y: Sequence, test_x: np.ndarray, test_y: Sequence) -> float:
    """Fraction of test rows whose cosine nearest train row has the same label."""
    if len(test_y) == 0:
        return float("nan")
    nn = cosine_matrix(test_x, train_x).argmax(axis=1)
    return float(np.mean([train_y[j] == t for j, t in zip(nn, test_y, strict=True)]))


BLOCK = 1024
"""Query rows scored at once: an all-pairs metric over n songs holds [BLOCK, n] similarities, not [n, n]
(the seed's 4,500 songs: 37 MB instead of 162 MB per matrix)."""


def _blocks(n: int) -> range:
    return range(0, n, BLOCK)


def loo_hits(x: np.ndarray, y: Sequence, queries: np.ndarray | None = None) -> np.ndarray:
    """[N] bool: whether each row's cosine nearest *other* row has its label (all rows are candidates,
    so a subset's mean is the leave-one-out accuracy of those queries among everyone). Blocked rows.
    ``queries``: row indices to score (the result is then [len(queries)])."""
    lab = np.asarray(y)
    u = l2_rows(x, np.float64)
    q = np.arange(len(lab)) if queries is None else np.asarray(queries, dtype=np.int64)
    nn = np.empty(len(q), dtype=np.int64)
    for s in _blocks(len(q)):
        rows = q[s:s + BLOCK]
        sim = u[rows] @ u.T
        sim[np.arange(len(rows)), rows] = -np.inf
        nn[s:s + BLOCK] = sim.argmax(axis=1)
    return lab[nn] == lab[q]


def loo_top1(x: np.ndarray, y: Sequence) -> float:
    """Leave-one-out cosine 1-NN accuracy: each row's nearest *other* row has its label."""
    if len(y) < 2:
        return float("nan")
    return float(np.mean(loo_hits(x, y)))


def probe_accuracy(train_x: np.ndarray, train_y: Sequence, test_x: np.ndarray, test_y: Sequence,
                   seed: int = 0) -> float:
    """Accuracy of a logistic regression fit on train (z-scored with train statistics)."""
    from sklearn.linear_model import LogisticRegression

    if len(test_y) == 0 or len(set(train_y)) < 2:
        return float("nan")
    mu, sd = zscore_stats(train_x)
    clf = LogisticRegression(max_iter=3000, random_state=seed)
    clf.fit((train_x - mu) / sd, list(train_y))
    return float(np.mean(clf.predict((test_x - mu) / sd) == np.asarray(test_y)))


def average_precision(relevant_in_rank_order: Sequence[bool]) -> float:
    """AP of one ranked list: mean over relevant positions i of precision@i (nan if none relevant)."""
    rel = np.asarray(relevant_in_rank_order, dtype=bool)
    if not rel.any():
        return float("nan")
    hits = np.cumsum(rel)
    return float(np.mean(hits[rel] / (np.flatnonzero(rel) + 1)))


def retrieval_map(x: np.ndarray, labels: Sequence, groups: Sequence | None = None) -> float:
    """Mean AP with each row as query against all others, ranked by cosine; relevant = same label.

    With ``groups``, candidates in the query's own group (e.g. the same singer) are removed first.
    Queries with no relevant candidate are skipped.
    """
    u = l2_rows(x, np.float64)
    labels = np.asarray(labels)
    grp = None if groups is None else np.asarray(groups)
    aps = []
    for s in _blocks(len(labels)):
        sims = u[s:s + BLOCK] @ u.T
        for r in range(sims.shape[0]):
            i = s + r
            cand = np.arange(len(labels)) != i
            if grp is not None:
                cand &= grp != grp[i]
            idx = np.flatnonzero(cand)
            order = idx[np.argsort(-sims[r, idx], kind="stable")]
            ap = average_precision(labels[order] == labels[i])
            if not np.isnan(ap):
                aps.append(ap)
    return float(np.mean(aps)) if aps else float("nan")


def eer(scores: Sequence[float], same: Sequence[bool]) -> float:
    """Equal error rate: where the false-accept and false-reject rates of a score threshold cross
    (linear interpolation between ROC points)."""
    from sklearn.metrics import roc_curve

    same = np.asarray(same, dtype=bool)
    if same.all() or not same.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(same, np.asarray(scores, dtype=np.float64))
    fnr = 1 - tpr
    d = fnr - fpr  # decreasing from 1 to -1 along the ROC
    i = int(np.flatnonzero(d <= 0)[0])
    if i == 0 or d[i] == 0:
        return float(fpr[i])
    t = d[i - 1] / (d[i - 1] - d[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def verification_eer(x: np.ndarray, labels: Sequence) -> float:
    """EER over all unordered pairs of rows (cosine score; genuine = same label)."""
    sims = cosine_matrix(x, x)
    iu = np.triu_indices(len(labels), k=1)
    lab = np.asarray(labels)
    return eer(sims[iu], lab[iu[0]] == lab[iu[1]])


def loso_gender(x: np.ndarray, labels: Sequence[str], singers: Sequence[str], c: float = 1.0,
                seed: int = 0, kind: str = "eval", pool_singers: bool = False) -> dict:
    """Leave-one-singer-out gender predictions of every song -> gender.binary_report (balanced accuracy
    ...). ``pool_singers``: the held-out singer's songs share their mean decision (gender.pool_by_singer),
    as `classify-gender predict` does for an unlabelled catalog singer."""
    from vocalcli import gender

    labels = np.asarray(labels)
    singers = np.asarray(singers)
    pred = np.empty(len(labels), dtype=object)
    for s in np.unique(singers):
        held = singers == s
        model = gender.fit(x[~held], labels[~held], c, kind, seed)
        pred[held] = model.predict(x[held], singers[held].tolist() if pool_singers else None)[0]
    return gender.binary_report(labels.tolist(), pred.tolist())


def zscore_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    return mu, np.where(sd > 1e-8, sd, 1.0)


def mfcc_stats(log_mel: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
    """MFCC mean + std over time from a natural-log mel [n_mels, frames] -> [2 * n_mfcc]."""
    import librosa

    db = np.asarray(log_mel, dtype=np.float32) * np.float32(10.0 / np.log(10.0))
    m = librosa.feature.mfcc(S=db, n_mfcc=n_mfcc)
    return np.concatenate([m.mean(axis=1), m.std(axis=1)]).astype(np.float32)


def chroma_2dftm(chroma: np.ndarray, patch: int = CHROMA_PATCH) -> np.ndarray:
    """Key/time-shift-invariant melody descriptor: median over patches of |FFT2(chroma patch)|.

    [12, frames] -> [12 * patch] L2-normalised. Shorter inputs are zero-padded to one patch.
    """
    c = np.asarray(chroma, dtype=np.float64)
    if c.shape[1] < patch:
        c = np.pad(c, ((0, 0), (0, patch - c.shape[1])))
    starts = range(0, c.shape[1] - patch + 1, max(1, patch // 2))
    mags = np.stack([np.abs(np.fft.fft2(c[:, s:s + patch])) for s in starts])
    v = np.median(mags, axis=0).ravel()
    return l2_rows(v, np.float64).astype(np.float32)


# ------------------------------------------------------------------------------------------ the report
def _nan_to_none(v: Any) -> Any:
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def _mfcc_features(project: project_mod.Project, ids: Sequence[str], progress: ProgressFn | None) -> np.ndarray:
    out = []
    for sid in ids:
        out.append(mfcc_stats(np.load(project.mel_path(sid), mmap_mode="r")))
        if progress:
            progress(advance=1)
    return np.stack(out)


def _read_melody_labels(path: Path, catalog: list[dict[str, str]]) -> dict[str, str]:
    """song_id -> melody id for catalog songs listed in the CSV (columns source, melody)."""
    if not Path(path).is_file():
        raise VocalError(f"melody labels {path} do not exist")
    rows = project_mod.read_csv(Path(path))
    if not rows or "source" not in rows[0] or "melody" not in rows[0]:
        raise VocalError(f"{path}: needs columns source,melody (source as in catalog.csv, e.g. alice/song1.flac)")
    by_source = {r["source"]: r["song_id"] for r in catalog}
    return {by_source[r["source"]]: r["melody"] for r in rows if r["source"] in by_source and r["melody"]}


def chroma_features(project: project_mod.Project, cfg: Config, rows: Sequence[dict[str, str]],
                    progress: ProgressFn | None = None) -> np.ndarray:
    """2DFTM chroma descriptors of catalog rows, re-decoded from songs_dir and MR-removed like prepare."""
    info_path = project.root / "prepare.json"
    if not info_path.is_file():
        raise MissingArtifact("prepare.json (with songs_dir) is missing; rerun 'vocal prepare SONGS_DIR'")
    info = json.loads(info_path.read_text())
    songs_dir = Path(info.get("songs_dir", ""))
    if not songs_dir.is_dir():
        raise MissingArtifact(f"songs_dir {songs_dir} recorded in prepare.json is not readable here")
    import librosa

    from vocalcli import audio, separation

    out = []
    for r in rows:
        y, _ = audio.load_window(songs_dir / r["source"], cfg.audio)
        method = r.get("separation") or info.get("separation") or "none"
        vocal, _ = separation.separate(y, cfg.audio.sample_rate, method)
        chroma = librosa.feature.chroma_stft(y=vocal, sr=cfg.audio.sample_rate, n_fft=4096,
                                             hop_length=CHROMA_HOP)
        out.append(chroma_2dftm(chroma))
        if progress:
            progress(advance=1)
    return np.stack(out)


class _Songs:
    """What every report reads: the embeddings (rows L2-normalised), the ok catalog rows by id, and the
    MFCC baseline features, computed once per song however many reports ask."""

    def __init__(self, project: project_mod.Project, emb: Any, catalog: list[dict[str, str]],
                 progress: ProgressFn | None, timbre: TimbreConfig | None = None) -> None:
        self.project, self.emb, self.catalog, self.progress = project, emb, catalog, progress
        self.timbre_cfg = timbre or TimbreConfig()
        # the timbre vectors were made with a signature normalisation learned from every singer's songs;
        # singer-ID re-learns it without the songs it scores (`normalised`)
        self.whitened = bool((emb.meta or {}).get("whitening")) and {"encoder", "cepstral"} <= set(emb.parts)
        self.row_of = {s: i for i, s in enumerate(emb.ids)}
        self.cat = {r["song_id"]: r for r in catalog}
        # each embedded row's singer ("" = unknown): what the signature normalisation learns from
        self.who = np.asarray([self.cat.get(s, {}).get("singer", "") for s in emb.ids], dtype=object)
        self.timbre = l2_rows(emb.timbre)
        self.melody = l2_rows(emb.melody)
        self._mfcc: dict[str, np.ndarray] = {}

    def rows(self, ids: Sequence[str]) -> list[int]:
        return [self.row_of[s] for s in ids]

    def singers(self, ids: Sequence[str]) -> list[str]:
        return [self.cat[s]["singer"] for s in ids]

    def normalised(self, fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(timbre [N, Dt], signature [N, Dc]) of every embedded song, the signature normalised as
        `vocal embed` does but learned only from the rows where ``fit`` [N bool] is true."""
        from vocalcli import cepstral

        raw, enc = self.emb.parts["cepstral"], self.emb.parts["encoder"]
        white = cepstral.within_singer(raw[fit], self.who[fit], self.timbre_cfg.within_singer_shrink)
        sig = white.apply(raw) if white is not None else l2_rows(raw)
        return l2_rows(cepstral.fuse(enc, sig, self.timbre_cfg)), sig

    def mfcc(self, ids: Sequence[str]) -> np.ndarray:
        todo = [s for s in ids if s not in self._mfcc]
        if todo:
            self._mfcc.update(zip(todo, _mfcc_features(self.project, todo, self.progress), strict=True))
        return np.stack([self._mfcc[s] for s in ids]) if ids else np.zeros((0, 2 * N_MFCC))

    def mfcc_z(self, ids: Sequence[str]) -> np.ndarray:
        """MFCC features z-scored with their own statistics."""
        x = self.mfcc(ids)
        mu, sd = zscore_stats(x)
        return (x - mu) / sd


Report = tuple[dict[str, Any], list[str]]
"""(metrics with dotted keys, notes saying why something could not be measured)."""


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")


def singer_id_report(songs: _Songs, split: dict[str, str], seed: int, labelled_encoder: bool = False) -> Report:
    """Singer identification: test vs train (1-NN, probe), leave-one-out 1-NN over every balanced song,
    same-singer retrieval mAP and verification EER; each next to MFCC mean+std.

    Leave-one-out is also reported per kind of query: ``_unseen`` = songs of singers with no song in the
    train split (`vocal balance --holdout`: voices that no training and no choice saw), ``_seen`` = the
    others, ``_untrained`` = songs outside the train split. ``labelled_encoder``: the encoder learned
    from singer-label positives, so the headline and ``_seen`` numbers count only untrained songs.

    When the signature is normalised within singers (vocalcli/cepstral.py ``within_singer``, learned from
    the catalog's singer labels), no song is scored with a normalisation that learned from the song
    itself: leave-one-out re-learns it without the query's singer (a new voice), the test-vs-train and
    retrieval figures without the songs they score (a closed set: the scored singers' other songs are
    known, as the train songs are to the probe)."""
    r: dict[str, Any] = {}
    notes: list[str] = []
    sing, cat = songs.singers, songs.cat
    train_ids = sorted(s for s, sp in split.items() if sp == "train")
    test_all = sorted(s for s, sp in split.items() if sp == "test")
    train_singers = {cat[s]["singer"] for s in train_ids if s in cat}
    test_ids = [s for s in test_all if cat.get(s, {}).get("singer") in train_singers]
    r["singer_id.n_train"] = len(train_ids)
    r["singer_id.n_test"] = len(test_ids)

    def without(scored: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(timbre vectors, parts) with the normalisation learned from every song but ``scored``."""
        if not songs.whitened:
            return songs.timbre, songs.emb.parts
        timbre, sig = songs.normalised(~np.isin(np.asarray(songs.emb.ids), scored))
        return timbre, {**songs.emb.parts, "cepstral": sig}

    if train_ids and test_ids:
        closed = without(test_ids)[0]
        tr_t, te_t = closed[songs.rows(train_ids)], closed[songs.rows(test_ids)]
        tr_m, te_m = songs.mfcc(train_ids), songs.mfcc(test_ids)
        mu, sd = zscore_stats(tr_m)  # train statistics for both sides
        tr_m, te_m = (tr_m - mu) / sd, (te_m - mu) / sd
        r["singer_id.top1"] = knn_top1(tr_t, sing(train_ids), te_t, sing(test_ids))
        r["singer_id.top1_mfcc"] = knn_top1(tr_m, sing(train_ids), te_m, sing(test_ids))
        r["singer_id.probe"] = probe_accuracy(tr_t, sing(train_ids), te_t, sing(test_ids), seed)
        r["singer_id.probe_mfcc"] = probe_accuracy(tr_m, sing(train_ids), te_m, sing(test_ids), seed)
    else:
        notes.append("singer_id: no test songs of singers seen in training (balanced.csv)")
    # leave-one-out 1-NN over every balanced song: 10x the queries of the test split. The contrastive
    # encoder saw the train songs (never their singer labels), the signature and MFCC are training-free.
    everyone = sorted(s for s in split if cat.get(s, {}).get("singer"))
    if everyone and max(Counter(sing(everyone)).values()) >= 2:
        rows_all = songs.rows(everyone)
        untrained = np.array([split[s] != "train" for s in everyone])
        unseen = np.array([cat[s]["singer"] not in train_singers for s in everyone])
        counted = untrained if labelled_encoder else np.ones(len(everyone), dtype=bool)
        if labelled_encoder:
            notes.append("singer_id.loo_top1: the encoder learned from singer labels, so only songs outside "
                         "the train split are scored")
        vectors = {"": songs.timbre[rows_all], "_mfcc": songs.mfcc_z(everyone),
                   **{f"_{part}": x[rows_all] for part, x in songs.emb.parts.items()}}
        held_out = _leave_singer_out(songs, everyone) if songs.whitened else {}
        hits_of = {suffix: held_out[suffix] if suffix in held_out else loo_hits(x, sing(everyone))
                   for suffix, x in vectors.items()}
        hits_of.update({k: v for k, v in held_out.items() if k not in hits_of})
        for suffix, hits in hits_of.items():
            r[f"singer_id.loo_top1{suffix}"] = _mean(hits[counted])
            r[f"singer_id.loo_top1_untrained{suffix}"] = _mean(hits[untrained])
            if unseen.any():
                r[f"singer_id.loo_top1_unseen{suffix}"] = _mean(hits[unseen])
                r[f"singer_id.loo_top1_seen{suffix}"] = _mean(hits[counted & ~unseen])
        r["singer_id.n_loo"] = int(counted.sum())
        r["singer_id.n_loo_unseen"] = int(unseen.sum())
    # retrieval and verification need >= 2 songs of a singer: the test split, else every unseen song
    pool = test_all
    if max(Counter(sing(pool)).values(), default=0) < 2:
        pool = sorted(s for s, sp in split.items() if sp in ("val", "test"))
        notes.append("singer_id.map/eer: no singer has 2 test songs; measured on val + test songs")
    if max(Counter(sing(pool)).values(), default=0) >= 2:
        closed, closed_parts = without(pool)
        x_t, x_m = closed[songs.rows(pool)], songs.mfcc_z(pool)
        r["singer_id.map"] = retrieval_map(x_t, sing(pool))
        r["singer_id.map_mfcc"] = retrieval_map(x_m, sing(pool))
        r["singer_id.eer"] = verification_eer(x_t, sing(pool))
        r["singer_id.eer_mfcc"] = verification_eer(x_m, sing(pool))
        for part, x in closed_parts.items():
            r[f"singer_id.map_{part}"] = retrieval_map(x[songs.rows(pool)], sing(pool))
        r["singer_id.n_retrieval"] = len(pool)
    return r, notes


def _leave_singer_out(songs: _Songs, everyone: list[str]) -> dict[str, np.ndarray]:
    """Leave-one-out hits over the songs ``everyone``, each singer's songs scored with the normalisation
    learned from every other singer's: the timbre vector (""), the normalised signature ("_cepstral"), and,
    since the normalisation is a generic backend, the encoder's vector and the MFCC baseline given the same
    ("_encoder_within", "_mfcc_within"; MFCC's learned from the other singers' songs among ``everyone``)."""
    from vocalcli import cepstral

    lab = np.asarray(songs.singers(everyone))
    rows = np.asarray(songs.rows(everyone))
    who = songs.who
    enc, mfcc = songs.emb.parts["encoder"], songs.mfcc_z(everyone)
    shrink = songs.timbre_cfg.within_singer_shrink
    out = {k: np.zeros(len(everyone), dtype=bool) for k in ("", "_cepstral", "_encoder_within", "_mfcc_within")}
    for singer in sorted(set(lab.tolist())):
        mine = np.flatnonzero(lab == singer)
        timbre, sig = songs.normalised(who != singer)
        out[""][mine] = loo_hits(timbre[rows], lab, mine)
        out["_cepstral"][mine] = loo_hits(sig[rows], lab, mine)
        for key, x, x_who, at in (("_encoder_within", enc, who, rows), ("_mfcc_within", mfcc, lab, slice(None))):
            learn = x_who != singer
            w = cepstral.within_singer(x[learn], x_who[learn], shrink)
            out[key][mine] = loo_hits((x if w is None else w.apply(x))[at], lab, mine)
    return out


def gender_report(songs: _Songs, cfg: Config) -> Report:
    """Gender balanced accuracy, leave-one-singer-out over labelled singers, next to MFCC mean+std."""
    from vocalcli import gender as gender_mod

    r: dict[str, Any] = {}
    data = gender_mod.labelled_songs(songs.project, set(songs.emb.ids))
    per_class = {g: len({s for s, lab in zip(data.singers, data.labels, strict=True) if lab == g})
                 for g in gender_mod.CLASSES}
    r["gender.n_singers"] = len(set(data.singers))
    if not all(n >= 2 for n in per_class.values()):
        return r, [f"gender: needs >= 2 labelled singers per gender, have {per_class}"]
    c, seed, pool = cfg.gender.c, cfg.seed, cfg.gender.pool_singers
    x_t = songs.timbre[songs.rows(data.ids)]
    kind = cfg.gender.features
    x_g = x_t if kind == "timbre" else gender_mod.song_features(songs.project, kind, data.ids, songs.emb)
    rep = loso_gender(x_g, data.labels, data.singers, c, seed, kind, pool)
    r["gender.features"] = kind
    r["gender.pool_singers"] = pool
    r["gender.balanced_accuracy"] = rep["balanced_accuracy"]
    # every baseline and part is pooled the same way, so the comparison stays like for like
    r["gender.balanced_accuracy_mfcc"] = loso_gender(songs.mfcc(data.ids), data.labels, data.singers, c,
                                                     seed, pool_singers=pool)["balanced_accuracy"]
    if pool:  # what the classifier does with one song alone
        r["gender.balanced_accuracy_per_song"] = loso_gender(x_g, data.labels, data.singers, c, seed,
                                                             kind)["balanced_accuracy"]
    if kind != "timbre":
        r["gender.balanced_accuracy_timbre"] = loso_gender(x_t, data.labels, data.singers, c, seed,
                                                           pool_singers=pool)["balanced_accuracy"]
    if kind == "pitch_cepstral":  # what each half does alone
        r["gender.balanced_accuracy_pitch"] = loso_gender(x_g[:, :1], data.labels, data.singers, c, seed,
                                                          pool_singers=pool)["balanced_accuracy"]
    for g in gender_mod.CLASSES:
        r[f"gender.recall_{g}"] = rep["recall"][g]
    r["gender.confusion"] = rep["confusion"]["matrix"]
    return r, []


def melody_report(songs: _Songs, cfg: Config, melody_labels: Path | None) -> Report:
    """Melody MAP among other singers' songs, next to chroma 2D-FFT (needs the labels CSV)."""
    r: dict[str, Any] = {"melody.map": None, "melody.map_chroma": None}
    if melody_labels is None:
        return r, ["melody: pass --melody-labels CSV (source,melody) to measure melody MAP"]
    labels = {s: m for s, m in _read_melody_labels(melody_labels, songs.catalog).items() if s in songs.row_of}
    ids = sorted(labels)
    r["melody.n_songs"] = len(ids)
    if len(ids) < 2:
        return r, ["melody: fewer than 2 labelled songs are in the embeddings"]
    notes: list[str] = []
    mel_lab, singers = [labels[s] for s in ids], songs.singers(ids)
    r["melody.map"] = retrieval_map(songs.melody[songs.rows(ids)], mel_lab, singers)
    for part in ("melody_tcae", "melody_pitch"):  # the melody vector's two parts alone
        if part in songs.emb.parts and np.any(songs.emb.parts[part]):
            r[f"melody.map_{part.removeprefix('melody_')}"] = retrieval_map(songs.emb.parts[part][songs.rows(ids)],
                                                                             mel_lab, singers)
    r["melody.map_timbre"] = retrieval_map(songs.timbre[songs.rows(ids)], mel_lab, singers)
    try:
        chroma = chroma_features(songs.project, cfg, [songs.cat[s] for s in ids], songs.progress)
        r["melody.map_chroma"] = retrieval_map(chroma, mel_lab, singers)
    except (MissingArtifact, VocalError) as e:
        notes.append(f"melody.map_chroma: {e}")
    return r, notes


def index_report(songs: _Songs, cfg: Config) -> Report:
    """Annoy's recall@10 against exact search, on the built index (else an in-memory build)."""
    from vocalcli import index as index_mod

    r: dict[str, Any] = {}
    vectors = index_mod.combine(songs.emb.timbre, songs.emb.melody, cfg.index.weights)
    k = min(10, len(vectors))
    try:
        idx = index_mod.load_index(songs.project, cfg)
        r["index.recall_at_10"] = index_mod.measure_recall(idx.ann, vectors, idx.info["search_k"], k=k,
                                                           seed=cfg.seed)
        r["index.search_k"] = idx.info["search_k"]
        r["index.n_trees"] = idx.info["n_trees"]
        return r, []
    except VocalError as e:
        ann = index_mod.build_annoy(vectors, cfg.index.n_trees, cfg.seed)
        sk = cfg.index.search_k or index_mod.choose_search_k(ann, vectors, cfg.index.n_trees, cfg.seed)[0]
        r["index.recall_at_10"] = index_mod.measure_recall(ann, vectors, sk, k=k, seed=cfg.seed)
        r["index.search_k"] = sk
        r["index.n_trees"] = cfg.index.n_trees
        return r, [f"index: measured on an in-memory build ({e})"]


def evaluate(project: project_mod.Project, cfg: Config, melody_labels: Path | None = None,
             progress: ProgressFn | None = None, out_dir: Path | None = None) -> dict[str, Any]:
    """Compute every metric and its baseline; write runs/evaluate/<timestamp>/report.json; return it.

    The result is one flat dict with dotted keys (REQUIRED_KEYS at least; None = not measurable here,
    with the reason in ``notes``).
    """
    from vocalcli import catalog as catalog_mod
    from vocalcli import index as index_mod

    emb = index_mod.load_embeddings(project)
    songs = _Songs(project, emb, catalog_mod.ok_rows(project), progress, cfg.timbre)
    if not project.balanced.is_file():
        raise MissingArtifact(f"no {project.balanced.name}; run 'vocal balance'")
    split = {r["song_id"]: r["split"] for r in project_mod.read_csv(project.balanced)
             if r["song_id"] in songs.row_of}
    r: dict[str, Any] = {}
    notes: list[str] = []
    labelled = (emb.meta or {}).get("encoder_positives") == "singer"  # the encoder saw singer labels
    for part, part_notes in (singer_id_report(songs, split, cfg.seed, labelled),
                             gender_report(songs, cfg),
                             melody_report(songs, cfg, melody_labels), index_report(songs, cfg)):
        r.update(part)
        notes += part_notes
    for key in REQUIRED_KEYS:
        r.setdefault(key, None)
    r = {k: _nan_to_none(v) for k, v in r.items()}
    r["n_songs"] = len(emb.ids)
    r["checkpoints"] = dict((emb.meta or {}).get("checkpoints") or {})
    r["notes"] = notes
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = out_dir or project.runs / "evaluate" / stamp
    r["report"] = str(out_dir / "report.json")
    project_mod.write_json(out_dir / "report.json", r)
    return r


def below_baseline(report: dict[str, Any]) -> list[str]:
    """Metrics of a report that lost to their same-run baseline ('key ours (baseline theirs)')."""
    out = []
    for m in METRICS:
        ours, ref = report.get(m.key), report.get(m.baseline) if m.baseline else None
        if ours is None or ref is None:
            continue
        if (ours < ref) if m.higher_is_better else (ours > ref):
            out.append(f"{m.key} {ours:.2f} (baseline {ref:.2f})")
    return out
