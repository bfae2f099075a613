"""Synthetic sung mels and tiny projects for the model tests (no audio decoding, no `vocal prepare`).

A "singer" is a spectral envelope (three formants at singer-specific frequencies) and a key; a
"melody" is a note sequence with its own rhythm. A song = a melody, transposed into the singer's key,
rendered as harmonics shaped by the singer's envelope, directly as a log-mel [n_mels, frames]. So a
singer-ID is learnable from timbre, and the same melody recurs across singers (transposed).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from vocalcli import catalog
from vocalcli import config as config_mod
from vocalcli import project as project_mod
from vocalcli.config import AudioConfig, Config


@lru_cache(maxsize=4)
def _basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def singer(seed: int) -> dict:
    rng = np.random.default_rng(1000 + seed)
    return {"formants": np.sort(rng.uniform([300, 900, 2200], [900, 2200, 3800])),
            "widths": rng.uniform(80, 300, 3), "tilt": rng.uniform(-12, -4), "key": int(rng.integers(-4, 5)),
            "breath": rng.uniform(1e-5, 1e-4)}


def melody(seed: int) -> list[tuple[int, int]]:
    """(midi note, duration in frames) pairs: 8 notes with a melody-specific rhythm."""
    rng = np.random.default_rng(2000 + seed)
    notes = 60 + np.cumsum(rng.integers(-4, 5, 8))
    durs = rng.choice([8, 16, 24, 32, 48], 8)
    return list(zip(notes.tolist(), durs.tolist(), strict=True))


def _sung(mel_notes: list[tuple[int, int]], sing: dict, frames: int, transpose: int = 0,
          offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(f0 in Hz [frames], loudness [frames]) of a melody sung by ``sing``: what `synth_mel` renders."""
    seq = np.concatenate([np.full(d, n, dtype=np.float64) for n, d in mel_notes])
    f0_midi = np.resize(np.roll(seq, -offset), frames) + sing["key"] + transpose
    f0 = 440 * 2 ** ((f0_midi - 69) / 12) * (1 + 0.006 * np.sin(2 * np.pi * np.arange(frames) / 12))
    gate = (np.diff(np.concatenate([[0], seq]), prepend=0) != 0)  # note onsets: short dips
    loud = np.resize(np.roll(1 - 0.7 * np.convolve(gate, np.ones(3), "same").clip(0, 1), -offset), frames)
    return f0, loud


def synth_track(mel_notes: list[tuple[int, int]], sing: dict, frames: int, transpose: int = 0,
                offset: int = 0) -> np.ndarray:
    """The f0 track [2, frames] (Hz, dB) prepare would store beside `synth_mel`'s mel."""
    f0, loud = _sung(mel_notes, sing, frames, transpose, offset)
    return np.stack([f0, 20 * np.log10(loud)]).astype(np.float32)


def synth_mel(mel_notes: list[tuple[int, int]], sing: dict, frames: int, audio: AudioConfig,
              transpose: int = 0, seed: int = 0, offset: int = 0) -> np.ndarray:
    """Log-mel [n_mels, frames] float16 of a melody sung by ``sing`` (harmonics x formant envelope)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)
    f0, loud = _sung(mel_notes, sing, frames, transpose, offset)
    freqs = np.fft.rfftfreq(audio.n_fft, 1 / audio.sample_rate)  # [bins]
    env = sum(np.exp(-0.5 * ((freqs - f) / w) ** 2) for f, w in zip(sing["formants"], sing["widths"],
                                                                      strict=True))
    env = (0.05 + env) * 10 ** (sing["tilt"] * np.log2(np.maximum(freqs, 50) / 100) / 20)
    h = np.arange(1, 30)[:, None] * f0[None, :]  # [harm, frames]
    spec = np.zeros((freqs.size, frames))
    bin_hz = freqs[1]
    for k in range(h.shape[0]):
        pos = h[k] / bin_hz
        i0 = np.floor(pos).astype(int)
        w = pos - i0
        ok = i0 + 1 < freqs.size
        spec[i0[ok], t[ok]] += (1 - w[ok])
        spec[i0[ok] + 1, t[ok]] += w[ok]
    power = (spec * env[:, None] ** 2) * loud[None, :] + sing["breath"] * rng.random((freqs.size, frames))
    mel = _basis(audio.sample_rate, audio.n_fft, audio.n_mels, audio.fmin, audio.fmax) @ power
    return np.log(mel + audio.log_floor).astype(np.float16)


def tiny_config(**contrastive_train: int) -> Config:
    """Seconds-per-test settings: 8 s windows, 1 s crops, narrow models, small queue."""
    cfg = config_mod.Config()
    cfg.audio.start_s, cfg.audio.end_s = 0.0, 8.0
    c = cfg.contrastive
    c.crop_s, c.channels, c.embedding_dim, c.queue_size, c.extract_hop_s, c.eval_crops = 1.0, 8, 16, 32, 1.0, 3
    c.train.epochs, c.train.batch_size, c.train.lr, c.train.warmup_steps = 2, 4, 3e-3, 2
    c.train.steps_per_epoch, c.train.min_steps = 4, 0  # seconds per test, whatever the library
    for k, v in contrastive_train.items():
        setattr(c.train, k, v)
    t = cfg.tcae
    t.channels, t.latent_channels, t.layers_per_stack, t.stacks, t.crop_s = 8, 4, 3, 1, 2.0
    t.train.epochs, t.train.batch_size, t.train.lr, t.train.warmup_steps = 2, 4, 3e-3, 2
    t.train.steps_per_epoch, t.train.min_steps = 10, 0
    return cfg


def make_project(root: Path, cfg: Config | None = None, singers: int = 4, songs: int = 4,
                 extra_unbalanced: int = 1) -> project_mod.Project:
    """A project dir with vocal.yaml, mels/, catalog.csv and balanced.csv (train/val/test per singer).

    Song j of singer i sings melody (i + j) % songs, so melodies recur across singers, transposed.
    ``extra_unbalanced`` more `ok` songs are in the catalog but not in balanced.csv.
    """
    cfg = cfg or tiny_config()
    root.mkdir(parents=True, exist_ok=True)
    proj = project_mod.Project(root.resolve())
    project_mod.write_text(proj.config_path, config_mod.to_yaml(cfg))
    frames = cfg.audio.n_frames
    cat, bal = [], []
    for i in range(singers):
        s = singer(i)
        for j in range(songs + extra_unbalanced):
            sid = f"s{i}_{j}"
            m = synth_mel(melody((i + j) % songs), s, frames, cfg.audio, seed=i * 100 + j)
            project_mod.save_npy(proj.mel_path(sid), m)
            project_mod.save_npy(proj.pitch_path(sid), synth_track(melody((i + j) % songs), s, frames))
            cat.append({"song_id": sid, "singer": f"singer{i}", "title": f"melody{(i + j) % songs}",
                        "source": f"songs/singer{i}/{sid}.wav", "duration_s": cfg.audio.end_s, "status": "ok",
                        "reason": "", "mel": f"mels/{sid}.npy", "gender": "", "genre": "",
                        "pitch": f"pitch/{sid}.npy"})
            if j < songs:
                split = "val" if j == songs - 1 else ("test" if j == songs - 2 and songs > 3 else "train")
                bal.append({"song_id": sid, "singer": f"singer{i}", "split": split})
    cat.append({"song_id": "broken", "singer": "x", "status": "too_short", "reason": "2 s", "mel": ""})
    catalog.write(proj.catalog, cat)
    project_mod.write_csv(proj.balanced, bal, project_mod.BALANCED_FIELDS)
    return proj
