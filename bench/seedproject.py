"""A seed-scale project without audio: S singers x N songs of full-size synthetic log-mels.

For timing what comes after `prepare` (train, embed, index, recommend, evaluate) at the research team's
scale (150 singers x 30 songs = 4,500 songs, 48 x 7501 float16 mels = 3.2 GB). Speed does not depend on
what the mels sound like, but the singer-ID and melody numbers then still have something to find: each
singer is a spectral envelope (formants) and a register, each song a melody of notes rendered as a
harmonic comb in the mel bands, plus noise. ~5 ms per song in numpy, written in parallel.

    python bench/seedproject.py DIR [--singers 150] [--songs 30] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _mel_centres(n_mels: int, fmax: float) -> np.ndarray:
    from vocalcli.audio import _hz_to_mel, _mel_to_hz

    return _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(fmax), n_mels + 2))[1:-1]


def _combs(n_mels: int, fmax: float) -> np.ndarray:
    """[128, n_mels] log energy of a harmonic tone of each MIDI note in each mel band."""
    hz = _mel_centres(n_mels, fmax)
    out = np.empty((128, n_mels))
    for m in range(128):
        f0 = 440.0 * 2 ** ((m - 69) / 12)
        k = np.arange(1, int(fmax // f0) + 2)
        bw = np.maximum(0.03 * hz, 25.0)
        out[m] = np.log(np.exp(-0.5 * ((hz[:, None] - k[None, :] * f0) / bw[:, None]) ** 2).sum(1) + 1e-3)
    return out


def singer_params(i: int, n_mels: int, fmax: float) -> dict:
    rng = np.random.default_rng([17, i])
    female = i % 2 == 0
    hz = _mel_centres(n_mels, fmax)
    formants = np.sort(rng.uniform([300, 900, 2200], [900, 2200, 3800])) * (1.15 if female else 1.0)
    env = sum(np.exp(-0.5 * ((hz - f) / w) ** 2) for f, w in zip(formants, rng.uniform(80, 300, 3), strict=True))
    env = np.log(0.05 + env) + rng.uniform(-1.5, -0.5) * np.log2(np.maximum(hz, 50) / 100)
    base = (60 if female else 48) + int(rng.integers(-3, 4))
    return {"env": env, "base": base, "gender": "female" if female else "male"}


def song_mel(singer: dict, combs: np.ndarray, melody: int, frames: int, seed: int) -> np.ndarray:
    """[n_mels, frames] float16 log-mel of ``melody`` sung by ``singer``."""
    return song(singer, combs, melody, frames, seed)[0]


def song(singer: dict, combs: np.ndarray, melody: int, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(``song_mel``, its f0 track [2, frames] float32 as prepare stores it in pitch/: Hz, dB)."""
    rng = np.random.default_rng(seed)
    mrng = np.random.default_rng([23, melody])
    steps = np.cumsum(mrng.integers(-3, 4, 64)) % 12
    durs = mrng.choice([8, 16, 24, 32, 48], 64)
    seq = np.repeat(singer["base"] + steps, durs)
    notes = np.resize(np.roll(seq, -int(rng.integers(len(seq)))), frames)
    mel = singer["env"][:, None] + combs[notes].T + 0.3 * rng.standard_normal((combs.shape[1], frames))
    track = np.stack([440.0 * 2 ** ((notes - 69) / 12), np.zeros(frames)]).astype(np.float32)
    return mel.astype(np.float16), track


def _write(args: tuple) -> None:
    path, track_path, i, j, frames, n_mels, fmax, melodies = args
    s = singer_params(i, n_mels, fmax)
    mel, track = song(s, _combs_cached(n_mels, fmax), (i + j) % melodies, frames, seed=i * 1000 + j)
    np.save(path, mel)
    np.save(track_path, track)


_COMBS: dict = {}


def _combs_cached(n_mels: int, fmax: float) -> np.ndarray:
    key = (n_mels, fmax)
    if key not in _COMBS:
        _COMBS[key] = _combs(n_mels, fmax)
    return _COMBS[key]


def build(root: Path, singers: int = 150, songs: int = 30, workers: int | None = None, cfg=None,  # noqa: ANN001
          yaml_extra: dict | None = None):  # noqa: ANN201
    """Write the project (vocal.yaml with every default, mels/, pitch/, catalog.csv, balanced.csv); returns it.

    Reuses mels already there (same shape), so a rerun of the bench does not rewrite 3 GB.
    """
    from vocalcli import balance as bal
    from vocalcli import catalog
    from vocalcli import config as config_mod
    from vocalcli import project as project_mod

    cfg = cfg or config_mod.Config()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    proj = project_mod.Project(root.resolve())
    data = cfg.to_dict()
    for dotted, v in (yaml_extra or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[p]
        node[last] = v
    cfg = config_mod.from_dict(data)
    project_mod.write_text(proj.config_path, config_mod.to_yaml(cfg))
    a = cfg.audio
    frames = a.n_frames
    jobs, rows = [], []
    for i in range(singers):
        sp = singer_params(i, a.n_mels, a.fmax)
        f0 = 440.0 * 2 ** ((sp["base"] + 4 - 69) / 12)
        for j in range(songs):
            sid = f"singer{i:03d}_song{j:02d}"
            path, track = proj.mel_path(sid), proj.pitch_path(sid)
            rows.append({"song_id": sid, "singer": f"singer{i:03d}", "title": f"melody{(i + j) % songs}",
                         "source": f"singer{i:03d}/song{j:02d}.flac", "duration_s": f"{a.end_s + 30:.3f}",
                         "status": "ok", "reason": "", "mel": path.relative_to(proj.root).as_posix(),
                         "gender": sp["gender"], "genre": "", "separation": "none",
                         "f0_hz": f"{f0:.1f}", "f0_p75_hz": f"{f0 * 1.12:.1f}", "settings": "synthetic",
                         "pitch": track.relative_to(proj.root).as_posix()})
            if not (_mel_ok(path, (a.n_mels, frames)) and _mel_ok(track, (2, frames))):
                jobs.append((str(path), str(track), i, j, frames, a.n_mels, a.fmax, songs))
    proj.mels.mkdir(parents=True, exist_ok=True)
    proj.pitch.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 8:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            pool.map(_write, jobs, chunksize=8)
    else:
        for job in jobs:
            _write(job)
    catalog.write(proj.catalog, rows)
    b = bal.balance(rows, cfg.balance, cfg.seed, songs_per_singer=songs)
    project_mod.write_csv(proj.balanced, b.rows, project_mod.BALANCED_FIELDS)
    with open(proj.root / "melody_labels.csv", "w", encoding="utf-8") as fh:
        fh.write("source,melody\n" + "".join(f"{r['source']},{r['title']}\n" for r in rows))
    return proj


def _mel_ok(path: Path, shape: tuple[int, int]) -> bool:
    try:
        return np.load(path, mmap_mode="r").shape == shape
    except (OSError, ValueError):
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--singers", type=int, default=150)
    ap.add_argument("--songs", type=int, default=30)
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()
    proj = build(a.dir, a.singers, a.songs, a.workers or None)
    print(f"{a.singers * a.songs} songs in {proj.root} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
