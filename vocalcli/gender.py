"""Singer gender from the voice: a logistic regression on the sung register (pitch statistics from
prepare) joined with the cepstral correlation signature (default), on the register alone, on timbre
vectors, or on mel statistics.

Why register + signature: register (f0 75th percentile) is the singer-independent cue, but songs sung
low or high overlap and on mixtures the tracker sometimes follows the band. The signature
(vocalcli/cepstral.py: how cepstral coefficients move together, i.e. formant behaviour) adds a second,
mostly independent cue. The two blocks get equal weight after standardisation (the register column is
scaled by sqrt(signature size)), so neither is tuned. What each feature kind measures is in
docs/quality.md.

Gender is a property of the singer, so every split is **by singer**: a song-level split would put the
same voice on both sides and measure recognition of that voice, not of gender. Songs whose singer has no
label (or a label other than female/male) are left out of training and evaluation and are never a class.

The model is tiny (standardisation + one weight vector): its checkpoint (vocalcli.checkpoint) holds
the feature kind and classes as model_config, mean/scale/coef/intercept as tensors, the held-out
metrics, the resolved config, and the digest of the contrastive checkpoint whose embeddings it reads
(timbre features), so a re-trained encoder makes it refuse to predict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import catalog
from vocalcli import project as project_mod
from vocalcli.config import GENDER_FEATURES, Config
from vocalcli.console import ProgressFn
from vocalcli.errors import MissingArtifact, StaleArtifact, VocalError

KIND = "gender"
FORMAT_VERSION = 1
CLASSES = catalog.GENDERS
FEATURES = GENDER_FEATURES


def mel_stats(log_mel: np.ndarray) -> np.ndarray:
    """Mean and std over time of each mel band: [n_mels, frames] -> [2 * n_mels] float32."""
    x = np.asarray(log_mel, dtype=np.float32)
    return np.concatenate([x.mean(axis=1), x.std(axis=1)]).astype(np.float32)


# --------------------------------------------------------------------------------------------- metrics
def binary_report(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str] = CLASSES) -> dict:
    """Balanced accuracy, per-class recall and the confusion matrix (rows = truth, cols = prediction).

    Balanced accuracy is scikit-learn's: the mean recall over the classes that occur in ``y_true``.
    """
    import warnings

    from sklearn.metrics import balanced_accuracy_score, confusion_matrix

    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    cm = confusion_matrix(y_true, y_pred, labels=list(classes)) if len(y_true) else np.zeros((2, 2), int)
    support = cm.sum(axis=1)
    recall = {c: (float(cm[i, i] / support[i]) if support[i] else None) for i, c in enumerate(classes)}
    with warnings.catch_warnings():  # a class predicted but absent from y_true is expected with few singers
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(y_true, y_pred)) if len(y_true) else None
    return {
        "balanced_accuracy": balanced,
        "recall": recall,
        "confusion": {"classes": list(classes), "matrix": cm.tolist()},
        "n_songs": int(cm.sum()),
    }


# ---------------------------------------------------------------------------------------------- model
@dataclass
class GenderModel:
    """Standardise, then logistic regression. ``predict_proba`` gives P(class) per row, [N, 2]."""

    features: str
    classes: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # [D]
    intercept: float
    meta: dict = dataclasses.field(default_factory=dict)

    def decision(self, x: np.ndarray) -> np.ndarray:
        """[N] log-odds of classes[1] per row."""
        z = (np.atleast_2d(x).astype(np.float64) - self.mean) / self.scale
        return z @ self.coef + self.intercept

    def predict_proba(self, x: np.ndarray, singers: Sequence[str] | None = None) -> np.ndarray:
        """[N, 2] P(class) per row; with ``singers`` each row gets its singer's pooled value
        (`pool_by_singer`)."""
        d = self.decision(x)
        if singers is not None:
            d = pool_by_singer(d, singers)
        p1 = 1.0 / (1.0 + np.exp(-d))
        return np.stack([1 - p1, p1], axis=1)

    def predict(self, x: np.ndarray, singers: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """-> (labels, probability of the predicted label) per row; ``singers`` as in predict_proba."""
        p = self.predict_proba(x, singers)
        best = p.argmax(axis=1)
        return [self.classes[i] for i in best], p[np.arange(len(best)), best]


def pool_by_singer(decision: np.ndarray, singers: Sequence[str]) -> np.ndarray:
    """[N] per-song log-odds -> [N] the mean log-odds over each song's singer (rows in the same order).

    Why: gender belongs to the singer, while a song's register depends on the song (a low melody, a
    tracker that followed the band for a whole song). The mean over a singer's songs outvotes such
    songs. Corpus, leave-one-singer-out, per song -> per singer: stems 1.00 -> 1.00, plain mixtures
    0.91 -> 1.00, band mixes 0.89 -> 1.00 (docs/quality.md); the cost is that a singer is right or
    wrong as a whole.
    """
    d = np.asarray(decision, dtype=np.float64)
    groups = np.asarray(list(singers), dtype=object)
    out = np.empty_like(d)
    for s in set(groups.tolist()):
        rows = groups == s
        out[rows] = d[rows].mean()
    return out


def column_weights(features: str, dim: int) -> np.ndarray:
    """Weights of the standardised columns: for pitch_cepstral the register column counts as much as the
    whole signature (sqrt(dim - 1)); 1 elsewhere."""
    w = np.ones(dim)
    if features == "pitch_cepstral" and dim > 1:
        w[0] = np.sqrt(dim - 1)
    return w


def fit(x: np.ndarray, y: Sequence[str], c: float, features: str, seed: int = 0) -> GenderModel:
    """Fit on features [N, D] and labels in CLASSES; classes are weighted to balance them. Columns are
    standardised, then weighted by ``column_weights`` (folded into the stored scale)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    scale = scale / column_weights(features, x.shape[1])
    target = np.array([CLASSES.index(v) for v in y])
    if len(set(target.tolist())) < 2:
        raise VocalError("gender training needs songs of both genders")
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    lr.fit((x - mean) / scale, target)
    return GenderModel(features, CLASSES, mean, scale, lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))


def split_singers(singer_gender: dict[str, str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held-out) singers, stratified by gender: round(fraction * n) per gender, at least one each
    side. Needs >= 2 singers per gender."""
    counts = {g: sorted(s for s, v in singer_gender.items() if v == g) for g in CLASSES}
    if any(len(v) < 2 for v in counts.values()):
        have = ", ".join(f"{g}: {len(v)}" for g, v in counts.items())
        raise VocalError(
            f"gender needs at least 2 labelled singers of each gender ({have}); add a gender column "
            "(female/male) to singers.csv and rerun 'vocal prepare'"
        )
    rng = np.random.default_rng(seed)
    train: list[str] = []
    held: list[str] = []
    for names in counts.values():
        order = [names[i] for i in rng.permutation(len(names))]
        k = min(max(1, round(fraction * len(names))), len(names) - 1)
        held += order[:k]
        train += order[k:]
    return sorted(train), sorted(held)


# ------------------------------------------------------------------------------------- data & features
@dataclass
class LabelledSongs:
    ids: list[str]
    singers: list[str]
    labels: list[str]
    unlabelled: int  # ok songs left out because their singer has no usable label


def labelled_songs(project: project_mod.Project, embedded: set[str] | None = None) -> LabelledSongs:
    """Every ok (and, if given, embedded) catalog song whose singer has a female/male label."""
    ids, singers, labels, skipped = [], [], [], 0
    for r in catalog.ok_rows(project):
        if embedded is not None and r["song_id"] not in embedded:
            continue
        g = catalog.normalise_gender(r.get("gender"))
        if g is None:
            skipped += 1
            continue
        ids.append(r["song_id"])
        singers.append(r["singer"])
        labels.append(g)
    return LabelledSongs(ids, singers, labels, skipped)


def _per_mel(project: project_mod.Project, ids: Sequence[str], fn: Any,
             progress: ProgressFn | None) -> np.ndarray:
    """[N, D]: ``fn`` of each song's stored mel (memory-mapped, one at a time)."""
    out = []
    for sid in ids:
        out.append(fn(np.load(project.mel_path(sid), mmap_mode="r")))
        if progress:
            progress(advance=1)
    return np.stack(out) if out else np.zeros((0, 0), np.float32)


def mel_features(project: project_mod.Project, ids: Sequence[str],
                 progress: ProgressFn | None = None) -> np.ndarray:
    """mel_stats of each song's stored mel: [N, 2 * n_mels]."""
    return _per_mel(project, ids, mel_stats, progress)


def pitch_features(project: project_mod.Project, ids: Sequence[str]) -> np.ndarray:
    """[N, 1] log2 pitch statistic from catalog.csv (written by prepare); see vocalcli.pitch."""
    from vocalcli.pitch import pitch_features as feats

    rows = {r["song_id"]: r for r in catalog.ok_rows(project)}
    out = []
    for sid in ids:
        r = rows.get(sid, {})
        try:
            out.append(feats(float(r["f0_hz"]), float(r["f0_p75_hz"])))
        except (KeyError, ValueError):
            raise VocalError(f"no pitch statistics for {sid} in catalog.csv (prepared by an older vocal); "
                             "run 'vocal prepare SONGS_DIR' again to add them") from None
    out_arr = np.stack(out) if out else np.zeros((0, 1))
    if not np.all(np.isfinite(out_arr)):
        out_arr = np.where(np.isfinite(out_arr), out_arr, np.nanmedian(out_arr, axis=0))
    return out_arr


def cepstral_features(project: project_mod.Project, ids: Sequence[str],
                      progress: ProgressFn | None = None) -> np.ndarray:
    """[N, 78] cepstral correlation signatures of the stored mels (training-free; vocalcli.cepstral)."""
    from vocalcli.cepstral import signature

    return _per_mel(project, ids, signature, progress)


def pitch_cepstral(pitch: np.ndarray, log_mel: np.ndarray) -> np.ndarray:
    """One song's pitch_cepstral features [1 + 78] from its pitch features [1] and log-mel."""
    from vocalcli.cepstral import signature

    return np.concatenate([np.asarray(pitch, np.float64).ravel(), signature(log_mel)])


def timbre_features(emb: Any, ids: Sequence[str]) -> np.ndarray:
    from vocalcli.vectors import l2_rows

    row = {s: i for i, s in enumerate(emb.ids)}
    return l2_rows(np.asarray(emb.timbre)[[row[s] for s in ids]])


def song_features(project: project_mod.Project, kind: str, ids: Sequence[str], emb: Any = None,
                  progress: ProgressFn | None = None) -> np.ndarray:
    if kind == "timbre":
        from vocalcli.index import load_embeddings

        return timbre_features(emb if emb is not None else load_embeddings(project), ids)
    if kind == "mel":
        return mel_features(project, ids, progress)
    if kind == "pitch":
        return pitch_features(project, ids)
    if kind == "pitch_cepstral":
        return np.hstack([pitch_features(project, ids), cepstral_features(project, ids, progress)])
    raise VocalError(f"unknown gender features {kind!r}; use one of {', '.join(FEATURES)}")


# -------------------------------------------------------------------------------------------- training
def train(project: project_mod.Project, cfg: Config, features: str | None = None,
          progress: ProgressFn | None = None) -> dict:
    """Train the gender classifier; evaluate both feature kinds on held-out singers; save the chosen one.

    The held-out metrics are for the split in vocal.yaml (gender.val_singers); the saved model is then
    refit on all labelled singers, because serving should use every labelled voice.
    Returns a report: {'features', 'compare': {kind: metrics}, 'train_singers', 'heldout_singers',
    'checkpoint', 'unlabelled_songs', ...}.
    """
    from vocalcli.index import load_embeddings

    g = cfg.gender
    features = features or g.features
    if features not in FEATURES:
        raise VocalError(f"unknown gender features {features!r}; use one of {', '.join(FEATURES)}")
    try:
        emb = load_embeddings(project)
        embedded: set[str] | None = set(emb.ids)
    except MissingArtifact:
        if features == "timbre":
            raise
        emb, embedded = None, None
    data = labelled_songs(project, embedded)
    singer_gender: dict[str, str] = {}
    for s, lab in zip(data.singers, data.labels, strict=True):
        if singer_gender.setdefault(s, lab) != lab:
            raise VocalError(f"singer {s!r} has songs labelled with both genders in catalog.csv; fix singers.csv")
    train_s, held_s = split_singers(singer_gender, g.val_singers, cfg.seed)
    is_train = np.array([s in set(train_s) for s in data.singers])
    y = np.array(data.labels)
    feats = {"mel": mel_features(project, data.ids, progress)}
    if emb is not None:
        feats["timbre"] = timbre_features(emb, data.ids)
    try:
        feats["pitch"] = pitch_features(project, data.ids)
        feats["pitch_cepstral"] = np.hstack([feats["pitch"], cepstral_features(project, data.ids)])
    except VocalError:
        if features in ("pitch", "pitch_cepstral"):
            raise
    compare = {}
    held_singers = [s for s, t in zip(data.singers, is_train, strict=True) if not t]
    for kind, x in feats.items():
        m = fit(x[is_train], y[is_train], g.c, kind, cfg.seed)
        pred, _ = m.predict(x[~is_train], held_singers if g.pool_singers else None)
        compare[kind] = binary_report(y[~is_train].tolist(), pred)
        if g.pool_singers:
            per_song, _ = m.predict(x[~is_train])
            compare[kind]["balanced_accuracy_per_song"] = binary_report(y[~is_train].tolist(),
                                                                        per_song)["balanced_accuracy"]
    model = fit(feats[features], y, g.c, features, cfg.seed)
    model.meta = {
        "metrics": compare[features],
        "compare": compare,
        "train_singers": train_s,
        "heldout_singers": held_s,
        "config": dataclasses.asdict(g),
        "n_mels": cfg.audio.n_mels,
        "sources": {"contrastive": _contrastive_digest(project)} if features == "timbre" else {},
    }
    path = project.checkpoint(KIND, "best")
    save(path, model, cfg.to_dict())
    return {
        "features": features,
        "metrics": compare[features],
        "compare": compare,
        "train_singers": train_s,
        "heldout_singers": held_s,
        "n_songs": len(data.ids),
        "unlabelled_songs": data.unlabelled,
        "checkpoint": str(path),
    }


def _contrastive_digest(project: project_mod.Project) -> str | None:
    p = project.checkpoint("contrastive", "best")
    return project_mod.file_digest(p) if p.is_file() else None


# ------------------------------------------------------------------------------------------ checkpoint
def save(path: Path, model: GenderModel, config: dict | None = None) -> None:
    """Through vocalcli.checkpoint: plain types + tensors, atomic, loadable with weights_only=True."""
    import torch

    from vocalcli import checkpoint

    checkpoint.save(
        path, kind=KIND,
        model_config={"features": model.features, "classes": list(model.classes), "dim": int(len(model.coef))},
        model={name: torch.from_numpy(np.asarray(getattr(model, name), np.float64))
               for name in ("mean", "scale", "coef")} | {"intercept": torch.tensor([model.intercept])},
        metrics=model.meta.get("metrics") or {},
        config=config or {},
        extra={k: v for k, v in model.meta.items() if k != "metrics"},
    )


def load(path: Path) -> GenderModel:
    from vocalcli import checkpoint

    p = checkpoint.load(path, KIND, "vocal classify-gender train")
    mc, w = p["model_config"], p["model"]
    return GenderModel(mc["features"], tuple(mc["classes"]), w["mean"].numpy(), w["scale"].numpy(),
                       w["coef"].numpy(), float(w["intercept"][0]), {**p.get("extra", {}), "metrics": p["metrics"]})


def load_model(project: project_mod.Project) -> GenderModel:
    """The trained classifier; MissingArtifact/StaleArtifact name 'vocal classify-gender train'."""
    path = project.checkpoint(KIND, "best")
    if not path.is_file():
        raise MissingArtifact(f"no gender classifier at {path}; run 'vocal classify-gender train'")
    model = load(path)
    made_with = (model.meta.get("sources") or {}).get("contrastive")
    if model.features == "timbre" and made_with and made_with != _contrastive_digest(project):
        raise StaleArtifact("the contrastive model changed since the gender classifier was trained; "
                            "run 'vocal classify-gender train'")
    return model


# ------------------------------------------------------------------------------------------ prediction
def predict_catalog(project: project_mod.Project, ids: Sequence[str] | None = None,
                    model: GenderModel | None = None, emb: Any = None, pool_singers: bool | None = None) -> list[dict]:
    """Predictions for ok catalog songs whose singer has no label (or only ``ids`` among them).

    With ``pool_singers`` (default: vocal.yaml's gender.pool_singers) each song gets its singer's
    gender, pooled over *every* unlabelled song of that singer (`pool_by_singer`), even when ``ids``
    asks for some of them only; ``singer_songs`` says over how many.
    """
    from vocalcli.index import load_embeddings

    model = model or load_model(project)
    if pool_singers is None:
        pool_singers = project.load_config().gender.pool_singers
    rows = [r for r in catalog.ok_rows(project) if catalog.normalise_gender(r.get("gender")) is None]
    if ids is not None:
        wanted = set(ids)
        asked = {r["singer"] for r in rows if r["song_id"] in wanted}
        rows = [r for r in rows if r["song_id"] in wanted or (pool_singers and r["singer"] in asked)]
    if model.features == "timbre":
        emb = emb if emb is not None else load_embeddings(project)
        have = set(emb.ids)
        rows = [r for r in rows if r["song_id"] in have]
    if not rows:
        return []
    x = song_features(project, model.features, [r["song_id"] for r in rows], emb)
    singers = [r["singer"] for r in rows]
    labels, prob = model.predict(x, singers if pool_singers else None)
    n_of = {s: singers.count(s) if pool_singers else 1 for s in singers}
    out = [{"song_id": r["song_id"], "singer": r["singer"], "title": r["title"], "gender": lab,
            "probability": float(p), "singer_songs": n_of[r["singer"]]}
           for r, lab, p in zip(rows, labels, prob, strict=True)]
    return out if ids is None else [o for o in out if o["song_id"] in wanted]


def song_genders(project: project_mod.Project, ids: Sequence[str], emb: Any = None) -> dict[str, tuple[str, str]]:
    """{song_id: (gender 'f'|'m', source 'catalog'|'predicted')} for the given ids that have one.

    Catalog labels win; unlabelled songs get the classifier's prediction when a classifier exists.
    """
    rows = {r["song_id"]: r for r in catalog.ok_rows(project)}
    out: dict[str, tuple[str, str]] = {}
    missing = []
    for sid in ids:
        g = catalog.normalise_gender(rows.get(sid, {}).get("gender"))
        if g:
            out[sid] = (g, "catalog")
        elif sid in rows:
            missing.append(sid)
    if missing and project.checkpoint(KIND, "best").is_file():
        for p in predict_catalog(project, missing, emb=emb):
            out[p["song_id"]] = (p["gender"], "predicted")
    return out


def predict_files(project: project_mod.Project, cfg: Config, paths: Sequence[Path],
                  separate: str | None = None, device: str = "auto",
                  progress: ProgressFn | None = None) -> list[dict]:
    """Predict the gender of each audio file (prepare pipeline, then features). A bad file becomes a row
    with 'error' instead of stopping the batch."""
    from vocalcli.errors import AudioError
    from vocalcli.prepare import prepare_query

    model = load_model(project)
    embedder = None
    if model.features == "timbre":
        from vocalcli.embed import Embedder

        embedder = Embedder.from_project(project, device=device)
    out = []
    for path in paths:
        row: dict[str, Any] = {"path": str(path)}
        try:
            mel, info, _ = prepare_query(path, cfg, separate)
            row["warnings"] = info.get("warnings", [])
            if embedder is not None:
                x = embedder.embed(mel)[0]
            elif model.features in ("pitch", "pitch_cepstral"):
                from vocalcli.pitch import pitch_features as feats

                x = feats(info["f0_hz"], info["f0_p75_hz"])
                if model.features == "pitch_cepstral":
                    x = pitch_cepstral(x, mel)
            else:
                x = mel_stats(mel)
            (lab,), prob = model.predict(x[None])
            row.update(gender=lab, probability=float(prob[0]))
        except AudioError as e:
            row["error"] = str(e)
        out.append(row)
        if progress:
            progress(advance=1)
    return out
