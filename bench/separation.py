"""Benchmark MR removal on the shared corpus: SI-SDR improvement and speed, one CPU thread.

    python bench/separation.py [--corpus /work/data/corpus-out] [--band /work/data/corpus-band] [-n 10]
                               [--methods harmonic,repet]

Two conditions side by side: the plain mixtures (``--corpus``: sung line over a steady MIDI
accompaniment) and the band mixes of the same songs (``--band``, made by ``../shared/corpus/band.py``:
harmony double, drums, bass, room reverb, louder band; its vocal stem is the lead as heard in the mix,
reverb included). A condition whose folder is missing is skipped with a note; one of them is needed.
For N songs of each (taken round-robin over singers, so every voice counts), each method separates the
analysed window (30-150 s, mono, 16 kHz: what `vocal prepare` feeds it) and we report
SI-SDRi = SI-SDR(estimate, vocal stem) - SI-SDR(mixture, vocal stem), in dB, and x realtime = window
seconds / separation seconds (decoding excluded). Threads are pinned to 1 before numpy/torch load, because
`vocal prepare` runs one song per worker process on every core. The speed is measured in the process's
CPU seconds (equal to wall seconds for one thread on an idle core), so a busy shared machine does not
make it look slower; the wall-clock figure is printed next to it.
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
from typing import Any  # noqa: E402

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


def run_condition(name: str, songs: list[tuple[Path, Path]], methods: list[str]) -> dict[str, Any]:
    """Separate every song with every method; print one row per song. -> {'gains': {method: [dB]},
    'seconds': {method: CPU s}, 'wall': {method: s}, 'audio_s': s, 'mix_db': [dB]}."""
    gains: dict[str, list[float]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)  # CPU seconds
    wall: dict[str, float] = defaultdict(float)
    mix_db: list[float] = []
    audio_s = 0.0
    print(f"\n[{name}]")
    print(f"{'song':<14}{'mix dB':>8}" + "".join(f"{m + ' dB':>14}{'x rt':>8}" for m in methods))
    for mix_path, voc_path in songs:
        mix, voc = load(mix_path), load(voc_path)
        n = min(mix.size, voc.size)
        mix, voc = mix[:n], voc[:n]
        dur = n / SR
        audio_s += dur
        base = si_sdr(mix, voc)
        mix_db.append(base)
        row = f"{mix_path.stem:<14}{base:8.2f}"
        for m in methods:
            t0, c0 = time.perf_counter(), time.process_time()
            est, _used = separate(mix, SR, m)
            dt = time.process_time() - c0
            wall[m] += time.perf_counter() - t0
            seconds[m] += dt
            gains[m].append(si_sdr(est, voc) - base)
            row += f"{gains[m][-1]:14.2f}{dur / dt:8.0f}"
        print(row, flush=True)
    return {"gains": gains, "seconds": seconds, "wall": wall, "audio_s": audio_s, "mix_db": mix_db}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("/work/data/corpus-out"),
                    help="plain mixtures: folder with mixtures/<singer>/<song>.flac and vocals/<singer>/<song>.flac")
    ap.add_argument("--band", type=Path, default=Path("/work/data/corpus-band"),
                    help="band mixes (shared/corpus/band.py output), same layout")
    ap.add_argument("-n", "--songs", type=int, default=10, help="number of songs per condition")
    ap.add_argument("--methods", default="harmonic,repet", help="comma-separated separation methods")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    conditions: dict[str, list[tuple[Path, Path]]] = {}
    for name, folder in (("plain mixtures", args.corpus), ("band mixes", args.band)):
        songs = pick_songs(folder, args.songs) if (folder / "mixtures").is_dir() else []
        if songs:
            conditions[name] = songs
        else:
            print(f"note: no {name} at {folder} (expected mixtures/<singer>/*.flac with matching vocals/...); "
                  "skipped", file=sys.stderr)
    if not conditions:
        print("nothing to measure: generate a corpus with shared/corpus/make_corpus.py (and band.py), or pass "
              "--corpus DIR / --band DIR", file=sys.stderr)
        return 2

    separate(np.zeros(SR, np.float32), SR, methods[0])  # warm-up: imports, caches
    results = {name: run_condition(name, songs, methods) for name, songs in conditions.items()}

    print(f"\n{'condition':<16}{'method':<10}{'songs':>6}{'mix dB':>8}{'SI-SDRi mean':>14}{'median':>9}"
          f"{'min':>8}{'x realtime':>12}{'(wall)':>8}")
    for name, res in results.items():
        for m in methods:
            g = np.asarray(res["gains"][m])
            print(f"{name:<16}{m:<10}{g.size:6d}{np.mean(res['mix_db']):8.2f}{g.mean():14.2f}{np.median(g):9.2f}"
                  f"{g.min():8.2f}{res['audio_s'] / res['seconds'][m]:12.1f}{res['audio_s'] / res['wall'][m]:8.0f}")
        if len(methods) >= 2:
            a, b = methods[0], methods[1]
            print(f"{name}: speed ratio {a}/{b}: {res['seconds'][b] / res['seconds'][a]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
