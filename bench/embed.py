"""Embedding throughput: songs embedded together (`embed_project`) vs one song at a time, same run.

    python bench/embed.py [--project DIR] [--songs 64] [--device auto] [--batch 8,16,32]

Without --project, a project of full-size synthetic mels (bench/seedproject.py, 48 x 7501) with untrained
models of the default size is made in a temp dir: speed does not depend on the weights. The baseline is
the pre-batching path: `Embedder.embed_parts` per song, mel read as it goes. Both are checked to give
the same vectors. Rounds are interleaved and the best of each is kept (shared machines are noisy).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def untrained_project(root: Path, singers: int, songs: int):  # noqa: ANN201
    """A seed-style project with untrained (0-epoch) checkpoints of the default model sizes."""
    import seedproject

    from vocalcli import config as config_mod
    from vocalcli import training

    proj = seedproject.build(root, singers, songs)
    cfg = config_mod.override(proj.load_config(), {"contrastive.train.epochs": 0, "tcae.train.epochs": 0})
    for task in ("contrastive", "tcae"):
        if not proj.checkpoint(task).exists():
            training.train(task, proj, cfg, "cpu")
    return proj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, help="a project with both best checkpoints (default: synthetic)")
    ap.add_argument("--songs", type=int, default=48, help="songs timed per variant")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", default="8,16", help="songs per batch to try (comma-separated)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    a = ap.parse_args()

    import torch

    from vocalcli import data
    from vocalcli.device import resolve_device
    from vocalcli.embed import Embedder, _read_mels

    if a.threads:
        torch.set_num_threads(a.threads)
    tmp = None
    if a.project is None:
        tmp = Path(tempfile.mkdtemp(prefix="vocal-bench-embed-"))
        proj = untrained_project(tmp / "p", max(2, a.songs // 8), 8)
    else:
        from vocalcli import project as project_mod

        proj = project_mod.find(a.project)
    dev = resolve_device(a.device)
    emb = Embedder.from_project(proj, dev)
    songs = data.catalog_songs(proj)[: a.songs]
    sizes = [int(b) for b in a.batch.split(",")]
    print(f"{len(songs)} songs of {np.load(songs[0].path, mmap_mode='r').shape} on {dev} "
          f"({torch.get_num_threads()} torch threads)")

    def one_at_a_time() -> dict[str, np.ndarray]:
        rows = [emb.embed_parts(np.load(s.path, mmap_mode="r"), None if s.pitch is None else np.load(s.pitch))
                for s in songs]
        return {k: np.stack([r[k] for r in rows]) for k in rows[0]}

    def batched(size: int) -> dict[str, np.ndarray]:
        outs = []
        for i in range(0, len(songs), size):
            read = [mt for _, mt in _read_mels(songs[i:i + size])]  # (mel, f0 track) per song
            outs.append(emb.embed_many([m for m, _ in read], [t for _, t in read]))
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    emb.embed_many([np.load(songs[0].path)] * 2)  # warm-up: allocator, kernels
    best: dict[str, float] = {}
    ref = got = None
    for _ in range(a.rounds):
        t = time.perf_counter()
        ref = one_at_a_time()
        sync()
        best["one"] = min(best.get("one", 1e9), time.perf_counter() - t)
        for size in sizes:
            t = time.perf_counter()
            got = batched(size)
            sync()
            best[f"b{size}"] = min(best.get(f"b{size}", 1e9), time.perf_counter() - t)
    err = max(float(np.abs(ref[k] - got[k]).max()) for k in ref)
    n = len(songs)
    base = n / best["one"]
    print(f"  one song at a time (baseline)  {base:7.2f} songs/s")
    for size in sizes:
        r = n / best[f"b{size}"]
        print(f"  {size:3d} songs per batch           {r:7.2f} songs/s   {r / base:.2f}x")
    print(f"  max |difference| of the vectors, batched vs one at a time: {err:.1e}")
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
