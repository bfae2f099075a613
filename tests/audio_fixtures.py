"""Synthesized audio written in every supported format at test time (no files in the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def voice(seconds: float, sr: int, f0: float = 220.0, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A vibrato harmonic tone with a little noise: [n] or [n, channels] float32 in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t) + np.floor(t) % 3 / 12)
    ph = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * ph) / k for k in range(1, 12)) + 0.01 * rng.standard_normal(t.size)
    y = (0.5 * y / np.abs(y).max()).astype(np.float32)
    if channels > 1:
        y = np.stack([y * (1 - 0.1 * c) for c in range(channels)], axis=1)
    return y


def write_av(path: Path, y: np.ndarray, sr: int, codec: str) -> None:
    """Encode mono float audio with PyAV (aac in .m4a, opus in .opus, mp3 in .mp3)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=sr)
        stream.layout = "mono"
        fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
        frame_size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=sr)
        pts = 0
        for i in range(0, len(y), frame_size):
            chunk = y[i : i + frame_size].astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = sr
            frame.pts = pts
            pts += chunk.shape[1]
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write(path: Path, y: np.ndarray, sr: int) -> Path:
    """Write ``y`` by extension: soundfile for wav/flac/ogg, PyAV for m4a/opus/mp3."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    if ext in (".m4a", ".aac"):
        write_av(path, y, sr, "aac")
    elif ext == ".opus":  # opus only runs at 8/12/16/24/48 kHz
        if sr not in (8000, 12000, 16000, 24000, 48000):
            import soxr

            y, sr = soxr.resample(y, sr, 48000).astype(np.float32), 48000
        write_av(path, y, sr, "libopus")
    elif ext == ".mp3":
        write_av(path, y, sr, "libmp3lame")
    else:
        sf.write(path, y, sr)
    return path


def songs_dir(root: Path, singers: int = 1, songs: int = 2, sr: int = 16000) -> Path:
    """A tiny library laid out as SONGS_DIR/SINGER/SONG.flac: 5-second voices, one pitch per singer."""
    for s in range(singers):
        for j in range(songs):
            p = root / f"singer{s}" / f"song{j}.flac"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, voice(5, sr, f0=150 + 40 * s, seed=j), sr)
    return root
