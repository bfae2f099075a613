"""Benchmark `vocal prepare` against baselines measured in the same run, on the same files.

    python bench/prepare.py [--songs-dir DIR] [--n 8] [--separate none]

Prints, per song: our prepare (one process) vs the naive pipeline (librosa.load of the whole file at
16 kHz + librosa.feature.melspectrogram of the window) vs the sum of our standalone parts (decode the
window, resample, mel, separation + pitch statistics). prepare also writes the singer's register
(pitch statistics, for gender), which the naive pipeline does not compute, so the like-for-like ratio
subtracts that step's standalone time; then the cost of storing the residue mel (prepare.residue on vs
off, harmonic separation) and 1 -> 2 worker scaling of the whole prepare. Ratios, not absolute times,
are what to compare across machines. Default files: the shared corpus mixtures if present, else 2:40
songs synthesized into a temp dir.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def pick_files(songs_dir: Path, n: int) -> Path:
    """A songs dir holding ``n`` songs (copied/linked from ``songs_dir`` round-robin over singers)."""
    from vocalcli.prepare import discover

    songs = discover(songs_dir)
    by_singer: dict[str, list] = {}
    for s in songs:
        by_singer.setdefault(s.singer, []).append(s)
    chosen, i = [], 0
    while len(chosen) < min(n, len(songs)):
        for lst in by_singer.values():
            if i < len(lst) and len(chosen) < n:
                chosen.append(lst[i])
        i += 1
    out = Path(tempfile.mkdtemp(prefix="vocal-bench-songs-"))
    for s in chosen:
        dst = out / s.source
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(s.path)
    return out


CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}
clock = time.process_time


def timed(fn, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
    t = clock()
    r = fn(*a, **k)
    return clock() - t, r


def child_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def as_processes(songs_dir: Path, separate: str, workers: int) -> dict[str, tuple[float, float]]:
    """(wall s, CPU s) of whole processes, start-up included: `vocal prepare`, the naive pipeline, and the
    imports alone (what every process -- and every spawned prepare worker -- pays before its first song)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    naive = ("import glob, librosa\n"
             f"for f in sorted(glob.glob('{songs_dir}/**/*.*', recursive=True)):\n"
             "    if f.endswith('.csv'): continue\n"
             "    y, _ = librosa.load(f, sr=16000)\n"
             "    librosa.feature.melspectrogram(y=y[480000:2400000], sr=16000, n_fft=512, hop_length=256, "
             "n_mels=48, fmax=8000)\n")
    runs = {"vocal prepare": [sys.executable, "-m", "vocalcli", "-q", "prepare", str(songs_dir), "-p",
                              tempfile.mkdtemp(prefix="vocal-bench-proc-"), "--separate", separate, "-w", str(workers)],
            "naive (librosa)": [sys.executable, "-c", naive],
            "import torch": [sys.executable, "-c", "import torch"],
            "import numpy + soundfile + soxr": [sys.executable, "-c", "import numpy, soundfile, soxr"]}
    out = {}
    for name, cmd in runs.items():
        c, t = child_cpu(), time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        out[name] = (time.perf_counter() - t, child_cpu() - c)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs-dir", type=Path, default=Path("/work/corpus-out/mixtures"))
    ap.add_argument("--n", type=int, default=8, help="songs to time")
    ap.add_argument("--separate", default="none", help="separation used in the per-song comparison")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the best of each is used")
    ap.add_argument("--scaling-separate", default="harmonic", help="separation used in the 1->2 worker run")
    ap.add_argument("--scaling-n", type=int, default=48,
                    help="songs in the 1->2 worker run (enough to amortise worker start-up, ~1 s)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="per-song times in CPU seconds of this process (default: robust on a shared, loaded "
                    "machine) or wall seconds")
    ap.add_argument("--process-workers", type=int, default=2, help="workers of the whole-process comparison")
    args = ap.parse_args()
    global clock
    clock = CLOCK[args.clock]

    import librosa
    import torch

    from vocalcli import audio
    from vocalcli import project as project_mod
    from vocalcli.config import Config, override
    from vocalcli.pitch import separate_with_pitch
    from vocalcli.prepare import discover, prepare_files

    torch.set_num_threads(1)
    tmp = None
    if not args.songs_dir.is_dir():
        from vocalcli.synth import make_library

        tmp = Path(tempfile.mkdtemp(prefix="vocal-bench-synth-"))
        print(f"{args.songs_dir} not found; synthesizing {args.n} songs of 2:40 into {tmp}")
        make_library(tmp, n_singers=max(2, args.n // 2), songs_per_singer=2, seconds=160, n_short=0)
        args.songs_dir = tmp
    songs_dir = pick_files(args.songs_dir, args.n)
    files = [s.path for s in discover(songs_dir)]
    cfg = override(Config(), {"prepare.separate": args.separate})
    a = cfg.audio
    print(f"{len(files)} songs from {args.songs_dir}; window {a.start_s:g}-{a.end_s:g} s, "
          f"{a.n_mels} mels, separation {args.separate}")

    # warm-up: imports, FFT plans, mel basis
    audio.log_mel(audio.load_window(files[0], a)[0], a)
    librosa.feature.melspectrogram(y=np.zeros(16000, np.float32), sr=16000)

    def naive_all() -> None:
        for f in files:
            y, _ = librosa.load(f, sr=a.sample_rate)
            seg = y[int(a.start_s * a.sample_rate): int(a.end_s * a.sample_rate)]
            librosa.feature.melspectrogram(y=seg, sr=a.sample_rate, n_fft=a.n_fft, hop_length=a.hop_length,
                                           win_length=a.win_length, n_mels=a.n_mels, fmax=a.fmax)

    def parts_all() -> tuple[float, float, float, float]:
        t_dec = t_res = t_mel = t_pitch = 0.0
        for f in files:
            dt, dec = timed(audio.decode, f, a.start_s, a.end_s)
            t_dec += dt
            mono = audio.to_mono(dec.samples)
            dt, y = timed(audio.resample, mono, dec.sample_rate, a.sample_rate)
            t_res += dt
            t_mel += timed(audio.log_mel, y, a)[0]
            t_pitch += timed(separate_with_pitch, y, a.sample_rate, args.separate)[0]
        return t_dec, t_res, t_mel, t_pitch

    proj_dir = Path(tempfile.mkdtemp(prefix="vocal-bench-proj-"))
    proj = project_mod.init(proj_dir)
    # interleaved rounds, best of each: the machines are noisy, the minimum is the least disturbed run
    rounds = {"ours": [], "naive": [], "parts": []}
    for _ in range(args.rounds):
        t, res = timed(prepare_files, proj, songs_dir, cfg, workers=1, force=True)
        assert res.counts.get("ok", 0) == len(files), res.counts
        rounds["ours"].append(t)
        rounds["naive"].append(timed(naive_all)[0])
        rounds["parts"].append(parts_all())
    t_ours, t_naive = min(rounds["ours"]), min(rounds["naive"])
    t_dec, t_res, t_mel, t_pitch = min(rounds["parts"], key=sum)
    parts = t_dec + t_res + t_mel + t_pitch
    core = t_ours - t_pitch  # what the naive pipeline also does: decode .. mel, save

    n = len(files)
    print(f"\nper song (one process, {args.clock} seconds, best of {args.rounds} interleaved rounds)"
          "   s/song    vs ours")
    print(f"  vocal prepare (decode window..mel, separation {args.separate} + pitch statistics, save) "
          f"{t_ours / n:8.3f}     1.00")
    print(f"  ... without its separation/pitch step (measured standalone, {t_pitch / n:.3f})  {core / n:8.3f}")
    print(f"  naive: librosa.load whole + melspec (no pitch) {t_naive / n:8.3f}     {t_naive / t_ours:.2f}x slower; "
          f"{t_naive / core:.2f}x slower than ours without the pitch step")
    print(f"  sum of parts: decode {t_dec / n:.3f} + resample {t_res / n:.3f} + mel {t_mel / n:.3f}"
          f" + separation/pitch {t_pitch / n:.3f} = {parts / n:.3f}; ours reaches {parts / t_ours:.2f} of it")

    procs = as_processes(songs_dir, args.separate, args.process_workers)
    n_songs = len(files)
    print(f"\nwhole processes on the {n_songs} songs, start-up included (-w {args.process_workers}):   wall s    CPU s")
    for name, (w, c) in procs.items():
        print(f"  {name:34s} {w:8.2f} {c:8.2f}")
    vp, nv = procs["vocal prepare"], procs["naive (librosa)"]
    print(f"  naive / vocal prepare: {nv[0] / vp[0]:.2f}x wall, {nv[1] / vp[1]:.2f}x CPU")

    # the residue mel (what separation took away) that the timbre encoder trains on: its cost per song
    res_on = override(Config(), {"prepare.separate": "harmonic", "prepare.residue": True})
    res_off = override(res_on, {"prepare.residue": False})
    t_on, t_off = [], []
    for _ in range(args.rounds):
        t_on.append(timed(prepare_files, proj, songs_dir, res_on, workers=1, force=True)[0])
        t_off.append(timed(prepare_files, proj, songs_dir, res_off, workers=1, force=True)[0])
    print(f"\nresidue (harmonic separation): prepare with residue {min(t_on) / n:.3f} s/song, without "
          f"{min(t_off) / n:.3f} -> {min(t_on) / min(t_off):.2f}x (target <= 1.5)")

    cfg2 = override(Config(), {"prepare.separate": args.scaling_separate})
    scale_dir = pick_files(args.songs_dir, args.scaling_n)
    n2 = len(discover(scale_dir))
    clock = time.perf_counter  # parallel speed-up is a wall-clock matter
    t1, _ = timed(prepare_files, proj, scale_dir, cfg2, workers=1, force=True)
    t2, _ = timed(prepare_files, proj, scale_dir, cfg2, workers=2, force=True)
    shutil.rmtree(scale_dir, ignore_errors=True)
    print(f"\nscaling ({args.scaling_separate} separation, {n2} songs): 1 worker {t1:.1f} s, 2 workers {t2:.1f} s "
          f"-> {t1 / t2:.2f}x (includes ~1 s of worker start-up)")
    print(f"targets: naive/ours >= 1.5 ({t_naive / t_ours:.2f} with pitch statistics, {t_naive / core:.2f} "
          f"like for like); parts/ours >= 0.8 ({parts / t_ours:.2f}); "
          f"1->2 workers >= 1.7 ({t1 / t2:.2f})")
    shutil.rmtree(proj_dir, ignore_errors=True)
    shutil.rmtree(songs_dir, ignore_errors=True)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
