"""Training throughput and embedding quality benchmarks for the two models.

Throughput (full size: 48 x 7501 mels, default vocal.yaml model sizes, CPU): samples/s of the training
step fed by our pipeline (memory-mapped crops planned per epoch, batched on-device transforms) vs a naive
per-sample loader (np.load of the whole file per sample, crop, collate), each with and without bf16
autocast; peak RSS. Every variant runs in its own process so peaks do not mix.

    python bench/train.py                       # synthetic full-size corpus in a temp dir
    python bench/train.py --steps 5 --songs 24
    python bench/train.py --project DIR --labels /work/corpus-out/labels.csv   # + quality on a project

Quality (needs a prepared, trained and embedded project): singer-ID kNN (top-1, leave-one-out, cosine)
of the timbre embeddings vs an MFCC-statistics baseline; melody retrieval MAP (queries = songs whose
melody recurs with another singer) of the melody embeddings vs a chroma-statistics baseline.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def make_corpus(root: Path, songs: int) -> None:
    from model_fixtures import make_project

    from vocalcli import config as config_mod

    cfg = config_mod.Config()
    singers = max(2, songs // 4)
    make_project(root, cfg, singers=singers, songs=songs // singers, extra_unbalanced=0)


class NaiveBatches:
    """Per-sample loading: the whole .npy read per sample (no memmap), crops, then a collate."""

    def __init__(self, bank, order, length, views, seed, epoch):
        self.bank, self.order, self.length, self.views = bank, order, length, views
        self.rng = np.random.default_rng([seed, epoch])

    def __len__(self):
        return len(self.order)

    def __iter__(self):
        import torch

        for row in self.order:
            samples = []
            for i in row.tolist():
                mel = np.load(self.bank.songs[i].path).astype(np.float32)  # full read every time
                crops = []
                for _ in range(self.views):
                    s = int(self.rng.integers(0, max(mel.shape[1] - self.length, 0) + 1))
                    c = mel[:, s:s + self.length]
                    if c.shape[1] < self.length:
                        c = np.pad(c, ((0, 0), (0, self.length - c.shape[1])), mode="edge")
                    crops.append(torch.from_numpy(np.ascontiguousarray(c)))
                samples.append(torch.stack(crops))
            yield {"idx": torch.as_tensor(row), "views": torch.stack(samples, dim=1)}


def run_variant(project_dir: Path, task_name: str, loader: str, bf16: bool, steps: int) -> dict:
    import torch

    from vocalcli import project as project_mod
    from vocalcli import training

    proj = project_mod.Project(project_dir)
    cfg = proj.load_config()
    train_cfg = getattr(cfg, task_name).train
    train_cfg.epochs, train_cfg.steps_per_epoch, train_cfg.warmup_steps = 1, steps + 1, 1
    dev = torch.device("cpu")
    cls = training.ContrastiveTask if task_name == "contrastive" else training.TCAETask
    task = cls(proj, cfg, dev)
    if loader == "naive":
        orig = task.batches

        def naive(order, epoch):
            ref = orig(order, epoch)
            return NaiveBatches(task.bank, order, ref.length, ref.views, cfg.seed, epoch)

        task.batches = naive  # type: ignore[method-assign]
    task.validate = lambda train_loss: {"score": -train_loss}  # type: ignore[method-assign]
    times: list[float] = []
    last = [time.perf_counter()]

    def progress(advance=1, **fields):
        if "total" in fields or not advance:
            return
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    r = training.fit(task, cfg, dev, checkpoints=None, run_root=None, resume=False, progress=progress,
                     bf16_on_cpu=bf16)
    batch = train_cfg.batch_size
    steady = times[1:] or times  # the first step pays for warm-up
    out = {"task": task_name, "loader": loader, "bf16": bf16, "batch": batch, "steps": len(steady),
           "samples_per_s": batch / float(np.mean(steady)), "loss": r.metrics.get("train_loss"),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if task_name == "tcae":
        out["receptive_field_frames"], out["receptive_field_s"] = task.receptive_field
        out["crop_frames"] = task.crop
    else:
        out["crop_frames"], out["n_negative_views"] = task.crop, [cfg.contrastive.pitch_shift,
                                                                   cfg.contrastive.time_stretch].count("neg")
    return out


# ----------------------------------------------------------------------------------------- quality
def _knn_acc(x: np.ndarray, labels: list[str]) -> float:
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    nn = s.argmax(axis=1)
    return float(np.mean([labels[j] == labels[i] for i, j in enumerate(nn)]))


def _map(x: np.ndarray, labels: list[str], groups: list[str]) -> float:
    """Mean average precision of same-label retrieval, only counting items of *other* groups (singers)."""
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    s = x @ x.T
    aps = []
    for i in range(len(x)):
        cand = [j for j in range(len(x)) if groups[j] != groups[i]]
        rel = np.array([labels[j] == labels[i] for j in cand])
        if not rel.any():
            continue
        order = np.argsort(-s[i, cand])
        hits = rel[order]
        prec = np.cumsum(hits) / (np.arange(len(hits)) + 1)
        aps.append(float((prec * hits).sum() / hits.sum()))
    return float(np.mean(aps)) if aps else float("nan")


def _mfcc_stats(mel: np.ndarray) -> np.ndarray:
    import scipy.fft

    m = scipy.fft.dct(mel.astype(np.float32), type=2, norm="ortho", axis=0)[:20]
    return np.concatenate([m.mean(axis=1), m.std(axis=1)])


def _chroma_stats(mel: np.ndarray, audio) -> np.ndarray:
    """Pitch-class profile from mel bands (coarse above ~1 kHz) + its key-invariant |DFT| over classes."""
    import librosa

    hz = librosa.mel_frequencies(audio.n_mels + 2, fmin=audio.fmin, fmax=audio.fmax)[1:-1]
    pc = np.round(12 * np.log2(np.maximum(hz, 1) / 440.0)).astype(int) % 12
    p = np.exp(mel.astype(np.float32))
    chroma = np.stack([p[pc == k].sum(axis=0) if (pc == k).any() else np.zeros(p.shape[1]) for k in range(12)])
    chroma = chroma / np.maximum(chroma.sum(axis=0, keepdims=True), 1e-9)
    prof = chroma.mean(axis=1)
    return np.concatenate([np.abs(np.fft.rfft(prof)), chroma.std(axis=1)])


def quality(project_dir: Path, labels_csv: Path | None) -> dict:
    from vocalcli import project as project_mod
    from vocalcli.embed import load_embeddings

    proj = project_mod.Project(project_dir)
    cfg = proj.load_config()
    emb = load_embeddings(proj)
    cat = {r["song_id"]: r for r in project_mod.read_csv(proj.catalog)}
    melody_of: dict[str, str] = {}
    if labels_csv and labels_csv.exists():
        for r in project_mod.read_csv(labels_csv):
            melody_of[r.get("song_id", "")] = r.get("melody_id") or r.get("melody", "")
            if r.get("vocal_path"):
                melody_of[Path(r["vocal_path"]).stem] = melody_of[r["song_id"]]
    singers, melodies, mfcc, chroma = [], [], [], []
    for sid in emb.ids:
        row = cat[sid]
        mel = np.load(proj.root / row["mel"])
        singers.append(row["singer"])
        melodies.append(melody_of.get(sid) or melody_of.get(Path(row.get("source", "")).stem, ""))
        mfcc.append(_mfcc_stats(mel))
        chroma.append(_chroma_stats(mel, cfg.audio))
    mf = np.stack(mfcc)
    mf = (mf - mf.mean(0)) / (mf.std(0) + 1e-9)
    ch = np.stack(chroma)
    ch = (ch - ch.mean(0)) / (ch.std(0) + 1e-9)
    out = {"songs": len(emb.ids), "singers": len(set(singers)),
           "singer_knn_top1": {"timbre": _knn_acc(emb.timbre, singers), "mfcc_stats": _knn_acc(mf, singers)}}
    if any(melodies):
        keep = [i for i, m in enumerate(melodies) if m]
        lab = [melodies[i] for i in keep]
        grp = [singers[i] for i in keep]
        out["melody_map"] = {"melody": _map(emb.melody[keep], lab, grp), "chroma_stats": _map(ch[keep], lab, grp),
                             "queries_with_a_match": sum(
                                 1 for i in range(len(keep)) if any(lab[j] == lab[i] and grp[j] != grp[i]
                                                                    for j in range(len(keep))))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", type=int, default=16, help="synthetic full-size songs (train split ~half)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    ap.add_argument("--tasks", default="contrastive,tcae")
    ap.add_argument("--project", type=Path, help="a trained + embedded project for the quality part")
    ap.add_argument("--labels", type=Path, help="labels.csv with song_id, melody_id (corpus generator)")
    ap.add_argument("--variant", help=argparse.SUPPRESS)  # internal: task,loader,bf16,dir
    a = ap.parse_args()
    if a.variant:
        task, loader, bf16, d = a.variant.split(",", 3)
        print(json.dumps(run_variant(Path(d), task, loader, bf16 == "1", a.steps)))
        return
    results: dict = {"throughput": []}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "bench"
        t0 = time.perf_counter()
        make_corpus(corpus, a.songs)
        print(f"synthetic corpus: {a.songs} songs x [48, 7501] in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
        for task in a.tasks.split(","):
            for loader in ("ours", "naive"):
                for bf16 in ("0", "1"):
                    cmd = [sys.executable, __file__, "--steps", str(a.steps), "--variant",
                           f"{task},{loader},{bf16},{corpus}"]
                    res = subprocess.run(cmd, capture_output=True, text=True)
                    if res.returncode:
                        print(res.stderr[-2000:], file=sys.stderr)
                        continue
                    row = json.loads(res.stdout.strip().splitlines()[-1])
                    results["throughput"].append(row)
                    print(f"{task:12s} {loader:6s} bf16={bf16}: {row['samples_per_s']:7.2f} samples/s, "
                          f"peak RSS {row['peak_rss_mb']:.0f} MB", file=sys.stderr)
    if a.project:
        results["quality"] = quality(a.project, a.labels)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
