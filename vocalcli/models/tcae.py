"""Time Causal AutoEncoder (TCAE): the melody model.

Encoder and decoder are WaveNet-style stacks of gated residual blocks of dilated *causal* 1-D
convolutions over time, with the mel bands as input channels. Dilations double per layer
(1, 2, 4, ... 2**(layers-1)) and the pattern repeats ``stacks`` times. The input is average-pooled to
the latent rate (blocks of ``downsample`` frames) before the stacks, so the receptive field is
``(1 + stacks * (kernel - 1) * (2**layers - 1)) * downsample`` frames (508 frames = 8.1 s for the
defaults). The latent ``[latent_channels, frames / downsample]`` is the melody representation.

Input is the *normalised* log-mel (`centre_bands`: each band's mean over the song removed -- the static
spectral envelope, much of a singer's timbre -- then divided by the song's std), so the autoencoder
spends its capacity on what changes in time: the melody. The normalisation uses whole-song statistics;
the network itself is causal (tested: perturbing frames after t leaves latents up to t unchanged).

`melody_embedding` turns a latent of any length into a fixed vector that ignores what a melody should
not depend on: a tempo-normalised self-similarity lag profile (lags counted in beats, see its docstring).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vocalcli.config import AudioConfig, MelodyConfig, TCAEConfig


@dataclass
class TCAEModelConfig:
    """The TCAE's shape, stored in its checkpoint. No defaults here: a new model takes them from
    vocal.yaml's ``tcae`` section (``from_config``), a trained one from its checkpoint."""

    n_mels: int
    channels: int
    latent_channels: int
    layers_per_stack: int
    stacks: int
    kernel_size: int
    downsample: int

    @classmethod
    def from_config(cls, c: TCAEConfig, audio: AudioConfig) -> TCAEModelConfig:
        return cls(n_mels=audio.n_mels, channels=c.channels, latent_channels=c.latent_channels,
                   layers_per_stack=c.layers_per_stack, stacks=c.stacks, kernel_size=c.kernel_size,
                   downsample=c.downsample)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def dilations(self) -> list[int]:
        return [2**i for i in range(self.layers_per_stack)] * self.stacks

    @property
    def receptive_field(self) -> int:
        """Input frames that one latent step sees: the conv stacks run on blocks of ``downsample`` frames."""
        return (1 + (self.kernel_size - 1) * sum(self.dilations)) * self.downsample


def receptive_field_seconds(cfg: TCAEModelConfig, audio: AudioConfig) -> float:
    return cfg.receptive_field / audio.frame_rate


def centre_bands(mel: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """[B, n_mels, T] log-mel -> per-band mean removed over time, divided by the sample's std."""
    x = mel - mel.mean(dim=-1, keepdim=True)
    return x / (x.std(dim=(1, 2), keepdim=True) + eps)


def pool_frames(x: torch.Tensor, d: int) -> torch.Tensor:
    """[B, C, T] -> [B, C, ceil(T / d)]: mean of each block of ``d`` frames (causal: a partial last block
    is padded with its own last frame)."""
    if d <= 1:
        return x
    t = x.shape[-1]
    x = F.pad(x, (0, -t % d), mode="replicate") if t % d else x
    return F.avg_pool1d(x, d, d)


class CausalConv1d(nn.Conv1d):
    """Conv1d whose output at t sees inputs <= t only (left padding of (kernel-1) * dilation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        pad = (self.kernel_size[0] - 1) * self.dilation[0]
        return super().forward(F.pad(x, (pad, 0)))


class ResidualBlock(nn.Module):
    """WaveNet block: gated dilated causal conv, 1x1 to the residual path and to the skip sum."""

    def __init__(self, channels: int, kernel: int, dilation: int, last: bool = False) -> None:
        super().__init__()
        self.conv = CausalConv1d(channels, 2 * channels, kernel, dilation=dilation)
        # the last block feeds only the skip sum (an unused residual conv would stall DDP)
        self.res = None if last else nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.conv(x).chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        res = x if self.res is None else (x + self.res(z)) * math.sqrt(0.5)
        return res, self.skip(z)


class _Stack(nn.Module):
    def __init__(self, c_in: int, c_out: int, cfg: TCAEModelConfig) -> None:
        super().__init__()
        self.inp = nn.Conv1d(c_in, cfg.channels, 1)
        n = len(cfg.dilations)
        self.blocks = nn.ModuleList(ResidualBlock(cfg.channels, cfg.kernel_size, d, last=i == n - 1)
                                    for i, d in enumerate(cfg.dilations))
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(cfg.channels, cfg.channels, 1), nn.ReLU(),
                                 nn.Conv1d(cfg.channels, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        skips = torch.zeros_like(h)
        for blk in self.blocks:
            h, s = blk(h)
            skips = skips + s
        return self.out(skips / math.sqrt(len(self.blocks)))


class TCAE(nn.Module):
    """normalised log-mel [B, n_mels, T] -> latent [B, latent_channels, ceil(T / downsample)] -> [B, n_mels, T]."""

    def __init__(self, cfg: TCAEModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = _Stack(cfg.n_mels, cfg.latent_channels, cfg)
        self.decoder = _Stack(cfg.latent_channels, cfg.n_mels, cfg)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Causal: latent step i sees input frames < (i + 1) * downsample only.

        The input is average-pooled to the latent rate *before* the dilated stacks (the last, partial
        window is padded with its own last frame, so nothing later leaks in): the convs then run at
        1/downsample of the frame rate, which makes training ``downsample`` times cheaper and stretches
        the receptive field to several seconds (phrases, not single notes) for the same layers.
        """
        return self.encoder(pool_frames(x, self.cfg.downsample))

    def decode(self, z: torch.Tensor, frames: int) -> torch.Tensor:
        """latent [B, latent_channels, T'] -> [B, n_mels, frames] (each latent step held for downsample frames)."""
        h = self.decoder(z)
        return h.repeat_interleave(self.cfg.downsample, dim=-1)[..., :frames] if self.cfg.downsample > 1 else h

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z, x.shape[-1]), z


def standardise(z: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """[B, C, T] -> each channel centred and scaled to unit std over time.

    Why: a trained latent puts most of its variance in a few slow channels; left as is, those dominate
    the cosine similarities (docs/quality.md has the melody MAP with and without).
    """
    zc = z - z.mean(dim=-1, keepdim=True)
    return zc / (zc.std(dim=-1, keepdim=True, correction=0) + eps)


REFINE_BEATS = (2, 4, 8, 16)  # multiples of the beat whose autocorrelation peaks refine the period
REFINE_WINDOW = 0.1  # half-width of the search around k * period, as a fraction of the period


def note_changes(x: torch.Tensor, centres_hz: Any, max_hz: float) -> torch.Tensor:
    """[B, n_mels, T] band-centred log-mel -> [B, k, T]: the k bands centred below ``max_hz`` (all bands
    when fewer than 2 are), each frame minus its mean over them: what `beat_period` reads the beat from.

    Why: the beat should be the *voice's*. Below ~1 kHz the vocal estimate is the sung harmonics; a note
    change moves them, which changes the spectral shape. What MR removal leaves of a drum kit is a
    broadband, mostly level change, which removing each frame's mean cancels. On the corpus band mixes
    (its Festival voices sing 20 % faster than the drums play) the beat of the full mel followed the
    drums in 32 of 41 songs, this view in 5 (docs/quality.md).
    """
    centres = torch.as_tensor(np.asarray(centres_hz, dtype=np.float32), device=x.device)
    keep = centres <= max_hz
    sub = x[:, keep] if int(keep.sum()) >= 2 else x
    return sub - sub.mean(dim=1, keepdim=True)


def _parabolic_peak(a: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """Fractional position of the peak of rows ``a`` [B, T] near integer indices ``i`` [B] (1..T-2)."""
    y0, y1, y2 = (a.gather(1, (i + k)[:, None])[:, 0] for k in (-1, 0, 1))
    den = y0 - 2 * y1 + y2
    safe = den.abs() > 1e-12
    off = torch.where(safe, 0.5 * (y0 - y2) / den.where(safe, torch.ones_like(den)), torch.zeros_like(den))
    return i.float() + off.clamp(-0.5, 0.5)


def beat_period(z: torch.Tensor, steps_per_s: float, prior_bpm: float | None = None,
                prior_octaves: float | None = None, refine: tuple[int, ...] = REFINE_BEATS,
                window: float = REFINE_WINDOW, min_bpm: float = 40.0, max_bpm: float = 240.0) -> torch.Tensor:
    """Latent [B, C, T'] -> beat period [B] in latent steps (fractional).

    Novelty = mean positive change of the (channel-centred, song-scaled) latent between steps; the beat
    is the autocorrelation peak of the novelty weighted by a log-normal tempo prior (centre
    ``prior_bpm``, ``prior_octaves`` wide, as in librosa's tempo estimator; None = vocal.yaml's
    ``melody`` defaults), refined by a parabola.
    That peak is only good to a step or so (64 ms at the default rates: ~2 % of a beat), and the
    melody vector reads lags up to 64 beats, where 2 % is more than a beat. So the period is then
    refined on the peaks near 2, 4, 8, 16 beats (``refine``): each is searched within +-``window``
    periods of k times the current estimate, and its parabolic position / k is the new period, so the
    error shrinks about k-fold (corpus stems: median tempo error 0.8 % -> 0.05 %, songs within 1 % of
    the sung tempo 23 -> 40 of 41; docs/quality.md has the melody MAP). Lags past the song's end stop
    the refinement. Octave errors (x2, x0.5) remain possible; the prior decides between them.
    """
    b, _, t = z.shape
    if t < 4:
        return torch.full((b,), 1.0, device=z.device)
    defaults = MelodyConfig()
    prior_bpm = defaults.tempo_prior_bpm if prior_bpm is None else prior_bpm
    prior_octaves = defaults.tempo_prior_octaves if prior_octaves is None else prior_octaves
    zc = z - z.mean(dim=-1, keepdim=True)
    zc = zc / (zc.std(dim=(1, 2), keepdim=True) + 1e-6)
    nov = F.relu(zc.diff(dim=-1)).mean(dim=1)
    nov = nov - nov.mean(dim=-1, keepdim=True)
    n_fft = 1 << (2 * t - 1).bit_length()
    nac = torch.fft.irfft(torch.fft.rfft(nov, n=n_fft).abs().square(), n=n_fft)[:, :t]
    lags = torch.arange(1, t, device=z.device, dtype=torch.float32)
    bpm = 60.0 * steps_per_s / lags
    ok = (bpm >= min_bpm) & (bpm <= max_bpm)
    if not ok.any():
        return torch.full((b,), float(t - 1), device=z.device)
    w = torch.exp(-0.5 * (torch.log2(bpm / prior_bpm) / prior_octaves) ** 2)
    score = torch.where(ok, nac[:, 1:] * w, torch.full_like(nac[:, 1:], -torch.inf))
    period = _parabolic_peak(nac, (score.argmax(dim=-1) + 1).clamp(1, t - 2))
    all_lags = torch.arange(t, device=z.device, dtype=torch.float32)
    for k in refine:
        centre, half = k * period, (window * period).clamp(min=1.0)
        fits = centre + half < t - 1  # songs too short for this multiple keep their estimate
        if not fits.any():
            break
        near = (all_lags[None] - centre[:, None]).abs() <= half[:, None]
        near[:, 0] = False
        i = torch.where(near, nac, torch.full_like(nac, -torch.inf)).argmax(dim=-1).clamp(1, t - 2)
        period = torch.where(fits, _parabolic_peak(nac, i) / k, period)
    return period


BEATS = (0.5, 64.0, 0.25)  # lag grid of the melody vector in beats: start, stop, step (255 lags)


def melody_embedding(latent: torch.Tensor, steps_per_s: float, period: torch.Tensor | None = None) -> torch.Tensor:
    """Latent [C, T'] or [B, C, T'] at ``steps_per_s`` steps per second -> L2-normalised [(B,) 255].

    A tempo-normalised self-similarity lag profile: the mean cosine similarity of (standardised, see
    `standardise`) latent steps that are ``k`` beats apart, for k = 0.5, 0.75, ..., 64 beats.
    ``period`` [(B,)] is the beat period in latent steps; None = estimated from the latent itself
    (`beat_period`). `vocalcli.embed.melody_of` passes the period of the encoder's pooled input instead:
    the latent is trained to keep which moments resemble which, not where the onsets are, and its
    novelty curve makes more octave errors. Why this ignores what a melody should not depend on:
    * time position: only relations between steps at a given lag enter (the window starts at a
      different bar in every rendition);
    * transposition and voice: a whole song sung higher, or by someone else, changes every frame of
      the latent alike; which moments resemble which (repeated notes, repeated phrases and verses) does
      not change, and that is what cosine similarities between frames measure;
    * tempo: lags are counted in beats, not seconds.
    Lags the song is too short for read the last available lag.
    """
    squeeze = latent.dim() == 2
    z = (latent.unsqueeze(0) if squeeze else latent).float()
    _, _, t = z.shape
    u = F.normalize(standardise(z), dim=1)
    n_fft = 1 << (2 * t - 1).bit_length()
    ac = torch.fft.irfft(torch.fft.rfft(u, n=n_fft).abs().square(), n=n_fft).sum(dim=1)[:, :t]
    ac = ac / torch.arange(t, 0, -1, device=z.device, dtype=ac.dtype)  # mean over the t - lag pairs
    period = beat_period(z, steps_per_s) if period is None else period.reshape(-1).to(z.device).float()
    start, stop, step = BEATS
    beats = torch.arange(start, stop + step / 2, step, device=z.device)
    pos = (beats[None] * period[:, None]).clamp(0, max(t - 1, 0))
    i0 = pos.floor().long().clamp(max=max(t - 2, 0))
    i1 = (i0 + 1).clamp(max=t - 1)
    w = pos - i0
    prof = ac.gather(1, i0) * (1 - w) + ac.gather(1, i1) * w
    out = F.normalize(prof - prof.mean(dim=-1, keepdim=True), dim=-1)
    return out[0] if squeeze else out
