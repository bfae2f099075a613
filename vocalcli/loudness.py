"""Which frames of a vocal estimate the timbre encoder reads: the loudest ones.

Why: where the voice rests, a vocal estimate is mostly what MR removal left of the band, and an encoder
that reads those frames learns the band (on band mixes most of its singer-ID errors were a song of
another singer with the same accompaniment). The cepstral signature reads the louder half for the same
reason (vocalcli.cepstral); docs/quality.md has the numbers for the encoder.
"""

from __future__ import annotations

import math

import numpy as np

SMOOTH_FRAMES = 5
"""Frames (80 ms at the default hop) the frame energy is averaged over before ranking, so a syllable's
quiet consonant edges stay with its vowel instead of leaving single-frame holes."""


def kept_frames(n_frames: int, fraction: float) -> int:
    """How many of ``n_frames`` frames `loudest_frames` keeps (known from a mel's header alone, so crop
    starts can be drawn before any mel is read)."""
    if fraction >= 1.0 or n_frames <= 0:
        return max(n_frames, 0)
    return max(1, math.ceil(fraction * n_frames))


def loudest_frames(log_mel: np.ndarray, fraction: float, smooth: int = SMOOTH_FRAMES) -> np.ndarray:
    """Indices [k] (int64, in time order) of the loudest ``fraction`` of the frames of a log-mel [n_mels, T]:
    k = `kept_frames`; ties are broken by time. ``fraction`` >= 1 keeps every frame."""
    n = int(log_mel.shape[1])
    k = kept_frames(n, fraction)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    loud = np.logaddexp.reduce(np.asarray(log_mel, dtype=np.float32), axis=0)
    if smooth > 1:
        from scipy.ndimage import uniform_filter1d

        loud = uniform_filter1d(loud, min(smooth, n), mode="nearest")
    top = np.argsort(-loud, kind="stable")[:k]
    return np.sort(top).astype(np.int64)


def loud_view(log_mel: np.ndarray, fraction: float) -> np.ndarray:
    """The log-mel with only its loudest ``fraction`` of frames, joined in time order: what the encoder
    reads of a song, in training and when embedding."""
    if fraction >= 1.0:
        return log_mel
    return np.asarray(log_mel)[:, loudest_frames(log_mel, fraction)]
