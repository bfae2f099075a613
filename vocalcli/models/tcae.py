"""Time Causal AutoEncoder (TCAE): the melody model.

Encoder and decoder are WaveNet-style stacks of gated residual blocks of dilated *causal* 1-D
convolutions over time, with the mel bands as input channels. Dilations double per layer
(1, 2, 4, ... 2**(layers-1)) and the pattern repeats ``stacks`` times, so the receptive field is
``1 + stacks * (kernel - 1) * (2**layers - 1)`` frames (127 frames = 2.0 s for the defaults) plus
``downsample - 1`` frames for the causal average pooling of the latent. The latent
``[latent_channels, frames / downsample]`` is the melody representation.

Input is the *normalised* log-mel (`normalise`: each band's mean over the song removed -- the static
spectral envelope, much of a singer's timbre -- then divided by the song's std), so the autoencoder
spends its capacity on what changes in time: the melody. The normalisation uses whole-song statistics;
the network itself is causal (tested: perturbing frames after t leaves latents up to t unchanged).

`melody_embedding` turns a latent of any length into a fixed vector built to ignore what a melody
should not depend on: time position (lag / modulation statistics only), transposition and singer
(after per-channel centring and per-frame normalisation only *relations between frames* remain: how
similar the latent is to itself ``lag`` steps later, and the rhythm of its changes).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vocalcli.config import AudioConfig, TCAEConfig


@dataclass
class TCAEModelConfig:
    n_mels: int = 48
    channels: int = 48
    latent_channels: int = 16
    layers_per_stack: int = 6
    stacks: int = 2
    kernel_size: int = 2
    downsample: int = 4

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
        """Input frames that one latent step sees (conv stacks + the pooling window)."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations) + self.downsample - 1


def receptive_field_seconds(cfg: TCAEModelConfig, audio: AudioConfig) -> float:
    return cfg.receptive_field / audio.frame_rate


def normalise(mel: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """[B, n_mels, T] log-mel -> per-band mean removed over time, divided by the sample's std."""
    x = mel - mel.mean(dim=-1, keepdim=True)
    return x / (x.std(dim=(1, 2), keepdim=True) + eps)


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
        """Causal: latent step i sees input frames < (i + 1) * downsample only."""
        h = self.encoder(x)
        d = self.cfg.downsample
        if d > 1:
            t = h.shape[-1]
            h = F.pad(h, (0, -t % d), mode="replicate") if t % d else h
            h = F.avg_pool1d(h, d, d)
        return h

    def decode(self, z: torch.Tensor, frames: int) -> torch.Tensor:
        h = z.repeat_interleave(self.cfg.downsample, dim=-1)[..., :frames] if self.cfg.downsample > 1 else z
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z, x.shape[-1]), z


def _log_lags(max_lag: int, n: int) -> torch.Tensor:
    return torch.unique(torch.round(torch.logspace(0, math.log10(max_lag), n)).long())


def melody_embedding(latent: torch.Tensor, n_lags: int = 24, max_lag: int = 256,
                     n_bands: int = 24) -> torch.Tensor:
    """Latent [C, T'] or [B, C, T'] -> fixed-length, L2-normalised melody vector [(B,) D].

    Two blocks, each centred and unit-normed before concatenation:
    * lag profile: mean cosine similarity between latent frames ``lag`` steps apart, for log-spaced
      lags 1 .. ``max_lag`` (repetition and contour structure; invariant to time shift and to any
      rotation of the latent space, which is how a transposition or another voice shows up);
    * modulation spectrum of the novelty curve (1 - cosine of neighbouring frames), in log-spaced
      bands: the rhythm of note changes.
    Too-short sequences give zeros at the lags they cannot reach.
    """
    squeeze = latent.dim() == 2
    z = latent.unsqueeze(0) if squeeze else latent
    z = z.float()
    b, _, t = z.shape
    u = F.normalize(z - z.mean(dim=-1, keepdim=True), dim=1)  # [B, C, T]
    lags = _log_lags(max_lag, n_lags)
    n_fft = 1 << (2 * t - 1).bit_length()
    spec = torch.fft.rfft(u, n=n_fft, dim=-1)
    ac = torch.fft.irfft(spec.abs().square(), n=n_fft, dim=-1).sum(dim=1)[:, : t]  # sum_c sum_t u_t u_t+l
    counts = torch.arange(t, 0, -1, device=z.device, dtype=z.dtype)
    prof = torch.zeros(b, len(lags), device=z.device)
    ok = lags < t
    prof[:, ok] = ac[:, lags[ok]] / counts[lags[ok]]
    novelty = 1 - (u[..., 1:] * u[..., :-1]).sum(dim=1) if t > 1 else torch.zeros(b, 1, device=z.device)
    novelty = novelty - novelty.mean(dim=-1, keepdim=True)
    n = novelty.shape[-1]
    n_mod = 1 << max(2 * max_lag, n).bit_length()
    power = torch.fft.rfft(novelty, n=n_mod, dim=-1).abs().square() / n  # [B, n_mod/2 + 1]
    csum = F.pad(power.cumsum(dim=-1), (1, 0))
    # log-spaced bands from 1/(2 max_lag) to 0.5 cycles per latent step, fixed for any length
    edges = torch.logspace(math.log10(1 / (2 * max_lag)), math.log10(0.5), n_bands + 1) * n_mod
    lo = edges[:-1].floor().long().clamp(1, n_mod // 2)
    hi = torch.maximum(edges[1:].ceil().long().clamp(max=n_mod // 2 + 1), lo + 1)
    bands = torch.log1p((csum[:, hi] - csum[:, lo]) / (hi - lo))
    parts = [F.normalize(p - p.mean(dim=-1, keepdim=True), dim=-1) for p in (prof, bands)]
    out = F.normalize(torch.cat(parts, dim=-1), dim=-1)
    return out[0] if squeeze else out
