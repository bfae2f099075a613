"""The sung pitch's self-similarity profile: the melody vector's second part, read off the f0 track that
MR removal follows (stored by prepare in pitch/<song_id>.npy).

Why next to the TCAE latent's profile: the latent hears the whole mel, so what stays of the band in the
vocal estimate and the singer's vowels move its frame similarities too. The tracked pitch is what a
melody *is*. Which frames sing the same pitch class as which, k beats later, does not change with the
key (a transposition moves every frame alike), the singer (octave and timbre are folded away) or the
tempo (lags are counted in beats), and an octave error of the tracker is folded away with the octave.
Corpus figures, the profile alone against the TCAE latent's (melody MAP over other singers' songs,
docs/quality.md): band mixes 0.65 against 0.51, chroma 0.34.
"""

from __future__ import annotations

import numpy as np

from vocalcli.models.tcae import BEATS

CLASSES = 24
"""Pitch-class bins per octave (half a semitone apart)."""
REF_HZ = 55.0


def track_at_frames(f0_hz: np.ndarray, energy: np.ndarray, track_hop_s: float, frame_hop_s: float,
                    n_frames: int) -> np.ndarray:
    """The tracker's f0 [T] (Hz) and the vocal estimate's energy [T] per frame -> [2, n_frames] float32
    at the mel's frame times (nearest tracker frame): row 0 the f0 in Hz, row 1 the energy in dB.
    What prepare stores, so the profile reads the same frames as the mel whatever the two hops are."""
    f0 = np.asarray(f0_hz, dtype=np.float64).reshape(-1)
    e = np.asarray(energy, dtype=np.float64).reshape(-1)
    if f0.size == 0:
        return np.zeros((2, n_frames), np.float32)
    idx = np.clip(np.rint(np.arange(n_frames) * frame_hop_s / track_hop_s).astype(np.int64), 0, f0.size - 1)
    return np.stack([f0[idx], 10.0 * np.log10(e[idx] + 1e-12)]).astype(np.float32)


def pitch_classes(track: np.ndarray, loud_fraction: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """[2, T] track -> (soft pitch-class frames [CLASSES, T], unit norm on the louder ``loud_fraction``
    of the frames and zero elsewhere; that mask [T] as float).

    Why the louder frames only: the tracker has no voicing decision; where the voice rests it follows
    what is left of the band, the same reason the cepstral signature reads the louder half.
    ``sigma``: the width in semitones of each frame's bump around its pitch class.
    """
    f0, db = np.asarray(track[0], np.float64), np.asarray(track[1], np.float64)
    if f0.size == 0:
        return np.zeros((CLASSES, 0)), np.zeros(0)
    keep = (db >= np.quantile(db, 1.0 - loud_fraction)) & (f0 > 0)
    semis = 12.0 * np.log2(np.maximum(f0, 1e-6) / REF_HZ)
    d = (semis[None] - (np.arange(CLASSES) * 12.0 / CLASSES)[:, None]) % 12.0
    d = np.minimum(d, 12.0 - d)
    m = np.exp(-0.5 * (d / sigma) ** 2)
    m = m / np.linalg.norm(m, axis=0, keepdims=True) * keep[None]
    return m, keep.astype(np.float64)


def _lagged_sums(a: np.ndarray) -> np.ndarray:
    """sum over t of a[..., t] * a[..., t + L] for every lag L >= 0 (rows summed), by FFT."""
    t = a.shape[-1]
    n = 1 << max(1, (2 * t - 1).bit_length())
    f = np.fft.rfft(a, n)
    ac = np.fft.irfft(f.real ** 2 + f.imag ** 2, n)[..., :t]
    return ac.sum(axis=0) if ac.ndim == 2 else ac


def profile(track: np.ndarray, period_frames: float, loud_fraction: float = 0.7, sigma: float = 1.0) -> np.ndarray:
    """[2, T] track and the beat period in frames -> the L2-normalised, centred lag profile [len(BEATS)]:
    for k = 0.5, 0.75, ... 64 beats, the mean pitch-class similarity of the louder frames k beats apart
    (the same lag grid as the TCAE latent's profile). Lags the song is too short for read its last lag;
    a track with no loud frame gives zeros."""
    m, keep = pitch_classes(track, loud_fraction, sigma)
    start, stop, step = BEATS
    beats = np.arange(start, stop + step / 2, step)
    t = m.shape[1]
    if t < 2 or not keep.any():
        return np.zeros(len(beats), np.float32)
    prof = _lagged_sums(m) / np.maximum(_lagged_sums(keep), 1.0)
    pos = np.clip(beats * float(period_frames), 0, t - 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), t - 2)
    w = pos - i0
    v = prof[i0] * (1 - w) + prof[i0 + 1] * w
    v = v - v.mean()
    n = np.linalg.norm(v)
    return (v / n if n > 0 else v).astype(np.float32)
