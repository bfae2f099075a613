"""Pitch shift and time stretch applied to log-mel batches on the training device.

The project stores mels, not audio, so the contrastive views are made in the mel domain, vectorised over
a batch ``[batch, n_mels, frames]`` with one parameter per sample:

* pitch shift by ``s`` semitones (formants move with it, as librosa's resample-based shift does): the
  spectrum becomes ``S'(f) = S(f / r)`` with ``r = 2 ** (s / 12)``. Band ``k`` (centre ``f_k``) reads the
  input at ``f_k / r``, mapped through the Slaney mel scale to a fractional band index and linearly
  interpolated. Bands that read above ``fmax`` are filled with the sample's floor (silence).
* time stretch by tempo factor ``rate`` (>1 = faster, like librosa's ``rate``): output frame ``j`` reads
  input frame ``j * rate`` (linear interpolation), so a source of ``ceil(out * rate)`` frames is needed.

Agreement with the waveform versions (librosa ``effects.pitch_shift`` / ``effects.time_stretch`` then the
same mel) is measured in tests/test_transforms.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch

from vocalcli.audio import SLANEY_HZ_PER_MEL, SLANEY_LOGSTEP, SLANEY_MIN_LOG_HZ, SLANEY_MIN_LOG_MEL
from vocalcli.config import AudioConfig


def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale (librosa's default, htk=False; constants in vocalcli.audio): linear below 1 kHz,
    logarithmic above."""
    lin = f / SLANEY_HZ_PER_MEL
    log = SLANEY_MIN_LOG_MEL + torch.log(torch.clamp(f, min=1e-6) / SLANEY_MIN_LOG_HZ) / SLANEY_LOGSTEP
    return torch.where(f >= SLANEY_MIN_LOG_HZ, log, lin)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    lin = SLANEY_HZ_PER_MEL * m
    log = SLANEY_MIN_LOG_HZ * torch.exp(SLANEY_LOGSTEP * (m - SLANEY_MIN_LOG_MEL))
    return torch.where(m >= SLANEY_MIN_LOG_MEL, log, lin)


@lru_cache(maxsize=8)
def _band_geometry(n_mels: int, fmin: float, fmax: float) -> tuple[torch.Tensor, float, float]:
    """(band centres in Hz [n_mels], mel of band 0's centre, mel step between centres)."""
    lo, hi = hz_to_mel(torch.tensor([fmin, fmax], dtype=torch.float64))
    step = float(hi - lo) / (n_mels + 1)
    mels = lo + step * torch.arange(1, n_mels + 1, dtype=torch.float64)
    return mel_to_hz(mels), float(mels[0]), step


def pitch_shift(x: torch.Tensor, semitones: torch.Tensor, audio: AudioConfig) -> torch.Tensor:
    """Shift each log-mel in ``x`` [B, n_mels, T] by ``semitones`` [B] (float, may be 0 or negative)."""
    b, n_mels, t = x.shape
    centres, mel0, step = _band_geometry(n_mels, float(audio.fmin), float(audio.fmax))
    centres = centres.to(device=x.device, dtype=torch.float32)
    ratio = torch.pow(2.0, semitones.to(x.device, torch.float32) / 12.0)  # [B]
    src_hz = centres[None, :] / ratio[:, None]  # [B, M] where each output band reads
    src = (hz_to_mel(src_hz) - mel0) / step  # fractional band index
    above = src > n_mels - 1 + 1e-3  # tolerance: float error of the mel round trip
    src = src.clamp(0, n_mels - 1)
    i0 = src.floor().long().clamp(max=n_mels - 2) if n_mels > 1 else src.floor().long()
    w = (src - i0).unsqueeze(-1)
    i1 = (i0 + 1).clamp(max=n_mels - 1)
    g0 = x.gather(1, i0.unsqueeze(-1).expand(b, n_mels, t))
    g1 = x.gather(1, i1.unsqueeze(-1).expand(b, n_mels, t))
    out = g0 + (g1 - g0) * w.to(x.dtype)
    floor = x.amin(dim=(1, 2), keepdim=True).expand(b, n_mels, t)
    return torch.where(above.unsqueeze(-1).expand(b, n_mels, t), floor, out)


def time_stretch(x: torch.Tensor, rate: torch.Tensor, out_frames: int) -> torch.Tensor:
    """Tempo-change each log-mel in ``x`` [B, n_mels, T] by ``rate`` [B] (>1 faster) -> [B, n_mels, out].

    Reads frames ``j * rate`` (linear interpolation, clamped at the last input frame); give
    ``T >= ceil(out_frames * max(rate))`` to avoid the clamp.
    """
    b, m, t = x.shape
    pos = torch.arange(out_frames, device=x.device, dtype=torch.float32)[None, :] * rate.to(
        x.device, torch.float32)[:, None]
    pos = pos.clamp(0, t - 1)
    i0 = pos.floor().long()
    i1 = (i0 + 1).clamp(max=t - 1)
    w = (pos - i0).unsqueeze(1).to(x.dtype)
    g0 = x.gather(2, i0.unsqueeze(1).expand(b, m, out_frames))
    g1 = x.gather(2, i1.unsqueeze(1).expand(b, m, out_frames))
    return g0 + (g1 - g0) * w


def random_semitones(n: int, max_abs: float, min_abs: float, generator: torch.Generator) -> torch.Tensor:
    """[n] shifts with |s| uniform in [min_abs, max_abs] and a random sign (min_abs=0: uniform +-max)."""
    mag = min_abs + (max_abs - min_abs) * torch.rand(n, generator=generator)
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    return mag * sign


def random_rates(n: int, factors: Sequence[float], generator: torch.Generator) -> torch.Tensor:
    """[n] tempo factors drawn from ``factors`` (Yakura et al.: 0.65 or 1.70)."""
    f = torch.tensor([float(v) for v in factors])
    return f[torch.randint(len(f), (n,), generator=generator)]


def source_frames(out_frames: int, factors: Sequence[float], stretch: bool) -> int:
    """Frames a raw crop needs so that a time-stretched view of ``out_frames`` needs no clamping."""
    if not stretch:
        return out_frames
    return math.ceil(out_frames * max(1.0, *[float(v) for v in factors])) + 1


def add_residue(x: torch.Tensor, residue: torch.Tensor, level_db: torch.Tensor) -> torch.Tensor:
    """Log-mels ``x`` [B, n_mels, T] with ``residue`` [B, n_mels, T] power-added at ``level_db`` [B]
    (dB relative to the residue as stored; -inf = unchanged): log(exp(x) + g exp(residue)).

    Adding powers ignores the cross term of the two signals' phases; against the mel of the true sum
    (mixture = vocal estimate + residue) the error is ~0.8 dB mean, small next to the random levels.
    """
    g = level_db.to(x.device, x.dtype)[:, None, None] * (math.log(10.0) / 10.0)
    return torch.logaddexp(x, residue.to(x.dtype) + g)


def add_reverb(x: torch.Tensor, rt60_s: torch.Tensor, wet_db: torch.Tensor, frame_rate: float) -> torch.Tensor:
    """Log-mels ``x`` [B, n_mels, T] with an exponentially decaying room tail power-added per band:
    power P + g * (h * P), h[k] ∝ exp(-6.91 k / (rt60 * frame_rate)) for k >= 1 frames (normalised to
    sum 1), g = 10^(wet_db / 10); ``rt60_s`` [B] seconds, ``wet_db`` [B] (-inf = dry)."""
    b, m, t = x.shape
    k_max = max(2, int(math.ceil(float(rt60_s.max()) * frame_rate)))
    # float64: a float32 FFT convolution has a noise floor ~70 dB under the crop's peak, inside a log-mel's range
    k = torch.arange(1, k_max + 1, device=x.device, dtype=torch.float64)
    h = torch.exp(-6.91 * k[None, :] / (rt60_s.to(x.device, torch.float64)[:, None] * frame_rate))
    h = h / h.sum(dim=1, keepdim=True)  # [B, K]
    n = t + k_max + 1  # linear, not circular, convolution
    peak = x.double().amax(dim=(1, 2), keepdim=True)
    power = torch.exp(x.double() - peak)  # scaled: no overflow
    kernel = torch.zeros(b, n, device=x.device, dtype=torch.float64)
    kernel[:, 1:k_max + 1] = h
    tail = torch.fft.irfft(torch.fft.rfft(power, n) * torch.fft.rfft(kernel, n)[:, None, :], n)[..., :t]
    g = torch.pow(10.0, wet_db.to(x.device, torch.float64) / 10.0)[:, None, None]
    return (torch.log(power + g * tail.clamp(min=0)) + peak).to(x.dtype)
