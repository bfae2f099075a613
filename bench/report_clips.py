"""Benchmark the report's clip encoding against libsndfile's Opus and Vorbis, in the same run.

    python bench/report_clips.py [--seconds 10] [--repeat 5] [--kbps 20]

Encodes the same mono 16 kHz synthetic song (voice + accompaniment, vocalcli.synth) as vocalcli.clips
does (PyAV's libopus at the given bitrate) and with soundfile (libsndfile) as Ogg Opus and Ogg Vorbis at
the nearest settings, and prints CPU seconds per second of audio, bytes per clip, and the ratios to
ours. Ratios, not absolute times, are what to compare across machines.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def song(seconds: float, sr: int = 16000) -> np.ndarray:
    from vocalcli import audio, synth

    singer = synth.default_singers(2)[0]
    vocal, acc = synth.sing(singer, 0, seconds, 22050, seed=0)
    return audio.resample(0.5 * (vocal + 0.7 * acc), 22050, sr).astype(np.float32)


def cpu(fn, repeat: int) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    import soundfile as sf

    from vocalcli import clips

    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--kbps", type=float, default=20.0)
    a = ap.parse_args()
    y = song(a.seconds)
    d = Path(tempfile.mkdtemp(prefix="vocal-bench-clips-"))
    # libsndfile maps its 0..1 "compression level" onto Opus 256..6 kbit/s (measured; mono)
    opus_level = (256 - a.kbps) / 250
    rows = [
        ("ours: PyAV libopus", d / "ours.opus", lambda: clips.encode_opus(d / "ours.opus", y, 16000, a.kbps)),
        ("soundfile Opus", d / "sf.opus",
         lambda: sf.write(d / "sf.opus", y, 16000, format="OGG", subtype="OPUS", compression_level=opus_level)),
        ("soundfile Vorbis (smallest)", d / "sf.ogg",
         lambda: sf.write(d / "sf.ogg", y, 16000, format="OGG", subtype="VORBIS", compression_level=1.0)),
    ]
    results = [(name, cpu(fn, a.repeat), path) for name, path, fn in rows]
    ours = results[0][1]
    print(f"{a.seconds:g} s mono 16 kHz, target {a.kbps:g} kbit/s, best of {a.repeat}")
    print(f"{'encoder':30s} {'CPU s per s':>12s} {'x ours':>8s} {'bytes':>8s} {'kbit/s':>7s}")
    for name, t, path in results:
        size = path.stat().st_size
        print(f"{name:30s} {t / a.seconds:12.4f} {t / ours:8.2f} {size:8d} {size * 8 / a.seconds / 1000:7.1f}")


if __name__ == "__main__":
    main()
