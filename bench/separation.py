"""Benchmark MR removal on the shared corpus: SI-SDR improvement and speed, one CPU thread.

    python bench/separation.py [--corpus /work/corpus-out] [-n 10] [--methods harmonic,repet]

For N songs (taken round-robin over singers, so every voice counts), each method separates the analysed
window (30-150 s, mono, 16 kHz: what `vocal prepare` feeds it) and we report
SI-SDRi = SI-SDR(estimate, vocal stem) - SI-SDR(mixture, vocal stem), in dB, and x realtime = window
seconds / separation seconds (decoding excluded). Threads are pinned to 1 before numpy/torch load, because
`vocal prepare` runs one song per worker process on every core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from vocalcli.audio import decode, resample, to_mono  # noqa: E402
from vocalcli.separation import separate, si_sdr  # noqa: E402

SR = 16000  # Hz, analysis rate
START_S, END_S = 30.0, 150.0  # s, the analysed window


def pick_songs(corpus: Path, n: int) -> list[tuple[Path, Path]]:
    """(mixture, vocal stem) pairs, round-robin over singers, at most n."""
    by_singer: dict[str, list[Path]] = defaultdict(list)
    for mix in sorted((corpus / "mixtures").glob("*/*.flac")):
        if (corpus / "vocals" / mix.parent.name / mix.name).is_file():
            by_singer[mix.parent.name].append(mix)
    picked: list[Path] = []
    queues = [list(v) for _, v in sorted(by_singer.items())]
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return [(m, corpus / "vocals" / m.parent.name / m.name) for m in picked]


def load(path: Path) -> np.ndarray:
    dec = decode(path, START_S, END_S)
    return resample(to_mono(dec.samples), dec.sample_rate, SR)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus-out"),
                    help="folder with mixtures/<singer>/<song>.flac and vocals/<singer>/<song>.flac")
    ap.add_argument("-n", "--songs", type=int, default=10, help="number of songs")
    ap.add_argument("--methods", default="harmonic,repet", help="comma-separated separation methods")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not (args.corpus / "mixtures").is_dir():
        print(f"no corpus at {args.corpus} (expected mixtures/<singer>/*.flac and vocals/...); "
              "generate it with shared/corpus/make_corpus.py or pass --corpus DIR", file=sys.stderr)
        return 2
    songs = pick_songs(args.corpus, args.songs)
    if not songs:
        print(f"no mixture with a matching vocal stem under {args.corpus}", file=sys.stderr)
        return 2

    separate(np.zeros(SR, np.float32), SR, methods[0])  # warm-up: imports, caches
    gains: dict[str, list[float]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    audio_s = 0.0
    header = f"{'song':<14}{'mix dB':>8}" + "".join(f"{m + ' dB':>14}{'x rt':>8}" for m in methods)
    print(header)
    for mix_path, voc_path in songs:
        mix, voc = load(mix_path), load(voc_path)
        n = min(mix.size, voc.size)
        mix, voc = mix[:n], voc[:n]
        dur = n / SR
        audio_s += dur
        base = si_sdr(mix, voc)
        row = f"{mix_path.stem:<14}{base:8.2f}"
        for m in methods:
            t0 = time.perf_counter()
            est, _used = separate(mix, SR, m)
            dt = time.perf_counter() - t0
            seconds[m] += dt
            gains[m].append(si_sdr(est, voc) - base)
            row += f"{gains[m][-1]:14.2f}{dur / dt:8.0f}"
        print(row, flush=True)

    print(f"\n{len(songs)} songs, {audio_s:.0f} s of audio at {SR} Hz, 1 thread")
    print(f"{'method':<10}{'SI-SDRi mean':>14}{'median':>9}{'min':>8}{'x realtime':>12}")
    for m in methods:
        g = np.asarray(gains[m])
        print(f"{m:<10}{g.mean():14.2f}{np.median(g):9.2f}{g.min():8.2f}{audio_s / seconds[m]:12.1f}")
    if len(methods) >= 2:
        a, b = methods[0], methods[1]
        print(f"speed ratio {a}/{b}: {seconds[b] / seconds[a]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
