"""The predominant (melody) f0 tracker: what the harmonic separator masks around and what prepare's
pitch statistics (vocalcli.pitch) summarise.

Why one tracker for both: the sung register is read off the very track the separator keeps, so the
two cannot disagree, and with ``harmonic`` separation the statistics come for free.

1. STFT, 1024-point Hann (64 ms at 16 kHz: resolves harmonics of a 70 Hz voice), hop 256.
2. Pitch salience per frame on a 20-cent grid, 70-1000 Hz: a weighted sum of the magnitude at the first
   12 harmonics (weights 0.85^(h-1)) *minus* half that at the midpoints between harmonics, which punishes
   the half-pitch candidate that plain subharmonic summation favours. Frames are normalised by their
   total magnitude, and a mild prior (+20 % per octave above 70 Hz) prefers the higher line: the sung
   melody is the top voice of the texture, and without the prior the tracker locks on 1/3-1/4 of a
   female f0. Before the salience each bin is weighted by how much it fluctuates over ~0.5 s (local
   std / mean, + 0.1): a voice's partials move with pitch drift, vibrato and syllables, a held
   instrument note's do not (so the cue is strongest on steady, MIDI-like accompaniment and weaker on
   recorded bands with vibrato).
3. Viterbi through the salience with a pitch-jump cost (a band of +-15 steps = +-300 cents per frame),
   so the track follows legato glides but not the accompaniment's notes.

Every frame gets an f0: there is no voicing decision, because the voice is almost always singing and
false "unvoiced" frames cost more than they save. What each choice was worth is in docs/quality.md.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

# analysis at 16 kHz; other rates scale the FFT to the same duration
FRAME_S = 0.064  # s, STFT window (1024 samples at 16 kHz)
HOP_FRACTION = 4  # hop = n_fft / 4 (16 ms at 16 kHz)
_FMIN, _FMAX = 70.0, 1000.0  # Hz, range of the sung f0 searched
_CENTS = 20  # resolution of the f0 grid
_HARMONICS = 12  # harmonics summed into the salience
_ALPHA = 0.85  # weight decay per harmonic
_BETA = 0.5  # weight of the inter-harmonic (half-integer) penalty
_PRIOR = 0.2  # salience gain per octave above _FMIN: prefers the top (melody) line
_JUMP = 2.0  # Viterbi cost per 20-cent step, in units of the salience's standard deviation
_BAND = 15  # max f0 change per frame in grid steps (300 cents per 16 ms)
_FLUCT_S = 0.5  # s, window of the per-bin fluctuation statistic (31 frames at 16 kHz / hop 256)
_FLUCT_FLOOR = 0.1  # weight of a perfectly steady bin (damped, not erased)


def stft(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred Hann STFT of mono ``y`` [n]: complex [n_fft // 2 + 1, frames]."""
    import torch

    # centred = reflect-padded by n_fft // 2; numpy pads a 1-D signal faster than torch.stft does itself
    x = torch.from_numpy(np.pad(np.asarray(y, dtype=np.float32), n_fft // 2, mode="reflect"))
    return torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=False,
                      return_complex=True).numpy()


def fft_size(sr: int) -> int:
    """Power of two nearest to FRAME_S seconds (1024 at 16 kHz); the hop is n_fft // HOP_FRACTION."""
    return int(2 ** round(np.log2(FRAME_S * sr)))


@lru_cache(maxsize=4)
def salience_matrix(sr: int, n_fft: int) -> tuple[Any, np.ndarray]:
    """Sparse [n_f0, n_bins] matrix mapping a magnitude frame to pitch salience, and the f0 grid in Hz.

    Row i adds alpha^(h-1) * |X| at h*f0_i and subtracts beta * alpha^(h-1) * |X| at (h-1/2)*f0_i,
    linearly interpolated between bins; the prior (1 + _PRIOR * octaves above _FMIN) is folded in.
    """
    import scipy.sparse as sp

    n_bins = n_fft // 2 + 1
    bin_hz = sr / n_fft
    n_f0 = int(1200 * np.log2(_FMAX / _FMIN) / _CENTS) + 1
    f0s = _FMIN * 2.0 ** (np.arange(n_f0) * _CENTS / 1200)
    h = np.arange(1, _HARMONICS + 1, dtype=np.float64)
    mult = np.concatenate([h, h[1:] - 0.5])  # harmonics, then midpoints from 1.5 up
    weight = np.concatenate([_ALPHA ** (h - 1), -_BETA * _ALPHA ** (h[1:] - 1)])
    pos = f0s[:, None] * mult[None, :] / bin_hz  # [n_f0, n_terms] fractional bins
    w = np.broadcast_to(weight, pos.shape) * (1 + _PRIOR * np.log2(f0s / _FMIN))[:, None]
    keep = pos < n_bins - 1
    rows = np.broadcast_to(np.arange(n_f0)[:, None], pos.shape)[keep]
    pos, w = pos[keep], w[keep]
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    matrix = sp.csr_matrix(
        (np.concatenate([w * (1 - frac), w * frac]), (np.concatenate([rows, rows]),
                                                       np.concatenate([lo, lo + 1]))),
        shape=(n_f0, n_bins), dtype=np.float32,
    )
    return matrix, f0s


def viterbi_band(score: np.ndarray, jump: float, band: int) -> np.ndarray:
    """Best path through ``score`` [states, frames] (higher = better) with a cost of ``jump`` per state
    of change between frames and at most ``band`` states per frame. Returns state indices [frames].

    Banded, so O(frames * states * band) in numpy. The per-frame loop reuses one window view of a padded
    buffer (it sees every write to the buffer) and one candidate buffer: making a fresh view each frame
    was most of the cost (2.5x the CPU time for 2 minutes of 16 ms frames, the same path).
    """
    n_states, n_frames = score.shape
    offsets = np.arange(-band, band + 1)
    penalty = jump * np.abs(offsets).astype(score.dtype)
    rows = np.arange(n_states)
    back = np.zeros((n_frames, n_states), dtype=np.int8)
    delta = score[:, 0].copy()
    pad = np.full(n_states + 2 * band, -np.inf, dtype=score.dtype)
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * band + 1)  # [states, 2 * band + 1] view of pad
    cand = np.empty(win.shape, dtype=score.dtype)
    for t in range(1, n_frames):
        pad[band:band + n_states] = delta
        np.subtract(win, penalty, out=cand)
        best = cand.argmax(axis=1)
        delta = cand[rows, best]
        delta += score[:, t]
        back[t] = best
    back -= band
    path = np.empty(n_frames, dtype=np.int64)
    path[-1] = int(delta.argmax())
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = path[t] + back[t, path[t]]
    return path


def fluctuation_weight(mag: np.ndarray, win: int) -> np.ndarray:
    """[bins, frames] local coefficient of variation (std / mean over ``win`` frames) of each bin, plus
    _FLUCT_FLOOR: large where a partial fluctuates (a voice's), small where it is steady (a held
    instrument note), never 0."""
    from scipy.ndimage import uniform_filter1d

    m1 = uniform_filter1d(mag, win, axis=1)
    m2 = uniform_filter1d(mag * mag, win, axis=1)
    cv = np.sqrt(np.maximum(m2 - m1 * m1, 0.0)) / (m1 + 1e-6 * float(mag.mean()) + 1e-12)
    return _FLUCT_FLOOR + cv


def track_f0(mag: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """Predominant (melody) f0 in Hz per frame [frames] from an STFT magnitude [n_fft//2+1, frames].

    Every frame gets an f0 (no voicing decision; see the module docstring for why). The salience is taken
    of the magnitude weighted by each bin's fluctuation (see the module docstring).
    """
    mag = np.asarray(mag, dtype=np.float32)
    win = max(3, int(round(_FLUCT_S * sr / (n_fft // HOP_FRACTION))) | 1)
    weighted = mag * fluctuation_weight(mag, win)
    matrix, f0s = salience_matrix(sr, n_fft)
    sal = np.asarray(matrix @ weighted, dtype=np.float32)
    sal /= weighted.sum(axis=0, keepdims=True) + 1e-9  # loudness-independent: every frame counts the same
    scale = float(sal.std()) or 1.0
    return f0s[viterbi_band(sal, _JUMP * scale, _BAND)]
