"""Singing pitch statistics of a (separated) vocal: the voice's register.

Why: register is the most singer-independent cue to gender (men and women sing about an octave apart),
while a timbre embedding or MFCCs learned from a handful of singers do not generalise to unseen ones
(corpus, leave-one-singer-out: MFCC 0.71, timbre embedding 0.18-0.42, the 75th f0 percentile 1.00
balanced accuracy on stems). Uses the harmonic separator's predominant-F0 tracker, on a few excerpts
spread over the window, so it costs ~0.06 s per song.
"""

from __future__ import annotations

import numpy as np

PITCH_FIELDS = ("f0_hz", "f0_p75_hz")
"""Catalog columns: median and 75th percentile of the tracked f0 over the louder half of frames."""

_EXCERPTS = 4
_EXCERPT_S = 8.0


def pitch_stats(y: np.ndarray, sr: int) -> dict[str, float]:
    """{'f0_hz': median f0, 'f0_p75_hz': 75th percentile} in Hz, over the louder half of the frames of
    up to 4 evenly spaced 8 s excerpts of mono ``y`` [n] at ``sr``. NaN when too short to track.

    The upper percentile is robust to the tracker's octave-down errors on mixtures (it has no voicing
    decision, so quiet or accompaniment-dominated frames can fall on a lower line).
    """
    from vocalcli import separation as sep

    n_fft = sep._fft_size(sr)
    hop = n_fft // sep._HOP_FRACTION
    seg = int(_EXCERPT_S * sr)
    if y.size < 2 * n_fft:
        return {k: float("nan") for k in PITCH_FIELDS}
    if y.size > _EXCERPTS * seg:
        starts = np.linspace(0, y.size - seg, _EXCERPTS).astype(int)
        mag = np.concatenate([np.abs(sep._stft(y[s:s + seg], n_fft, hop)) for s in starts], axis=1)
    else:
        mag = np.abs(sep._stft(y, n_fft, hop))
    f0 = sep.track_f0(mag, sr, n_fft)
    energy = np.square(mag).sum(axis=0)
    lf = np.log2(f0[energy >= np.median(energy)])
    p50, p75 = np.percentile(lf, [50, 75])
    return {"f0_hz": float(2**p50), "f0_p75_hz": float(2**p75)}


def pitch_features(f0_hz: float, f0_p75_hz: float) -> np.ndarray:
    """[1] float: log2 of the 75th percentile (octaves are what separates registers).

    The median is left out: on mixtures the tracker falls on accompaniment lines often enough to pull
    it down an octave (corpus, leave-one-singer-out: median + p75 0.56, p75 alone 0.75 on mixtures;
    0.975 either way on stems).
    """
    return np.log2(np.array([f0_p75_hz], dtype=np.float64))
