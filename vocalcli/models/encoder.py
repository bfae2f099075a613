"""The timbre / vocal-style encoder: a small 2-D conv net over log-mel crops -> an L2-normalised vector.

2-D convolutions see the frequency axis as an image axis, so the net can respond to where the
harmonics and formants sit, which is what the pitch-shift negatives ask it to separate from timbre.
By default the kernels are one frame wide (``time_kernel``): only pooling spans time, so the net hears
spectra and how they are spread, not how frames follow each other, which is where a song's band,
rhythm and melody are (on voices it did not train on: as good, on those it did: better;
docs/quality.md).
GroupNorm (not BatchNorm) keeps a sample's embedding independent of the rest of its batch: no
information leaks between the MoCo query and key batches, and DDP needs no synchronised statistics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vocalcli.config import AudioConfig, ContrastiveConfig


@dataclass
class EncoderConfig:
    """The encoder's shape, stored in its checkpoint. No defaults here: a new model takes them from
    vocal.yaml's ``contrastive`` section (``from_config``), a trained one from its checkpoint."""

    n_mels: int
    channels: int  # first block; doubled per block up to 4x
    blocks: int  # each halves frequency and time
    embedding_dim: int
    time_pool: int  # frames averaged before the convs
    input_norm: str
    time_kernel: int  # conv kernel along time: 3, or 1 = each frame's spectrum alone (time only pooled)

    @classmethod
    def from_checkpoint(cls, stored: dict) -> EncoderConfig:
        """A stored config; checkpoints from before ``input_norm`` existed subtracted the crop mean, and
        those from before ``time_kernel`` had 3-frame kernels."""
        return cls(**{"input_norm": "crop", "time_kernel": 3, **stored})

    @classmethod
    def from_config(cls, c: ContrastiveConfig, audio: AudioConfig) -> EncoderConfig:
        return cls(n_mels=audio.n_mels, channels=c.channels, blocks=c.blocks, embedding_dim=c.embedding_dim,
                   time_pool=c.time_pool, input_norm=c.input_norm, time_kernel=c.time_kernel)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _groups(ch: int) -> int:
    for g in (8, 4, 2):
        if ch % g == 0:
            return g
    return 1


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, time_kernel: int) -> None:
        super().__init__()
        kernel, pad = (3, time_kernel), (1, time_kernel // 2)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel, padding=pad, bias=False)
        self.norm1 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel, padding=pad, bias=False)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return F.max_pool2d(F.gelu(h + self.skip(x)), 2, ceil_mode=True)


class TimbreEncoder(nn.Module):
    """[B, n_mels, frames] log-mel (any frames >= time_pool * 2**blocks) -> [B, embedding_dim], unit L2 norm."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        chans = [min(cfg.channels * 2**i, cfg.channels * 4) for i in range(cfg.blocks)]
        self.blocks = nn.Sequential(*[_Block(c_in, c_out, cfg.time_kernel)
                                      for c_in, c_out in zip([1, *chans[:-1]], chans, strict=True)])
        freq = cfg.n_mels
        for _ in range(cfg.blocks):
            freq = -(-freq // 2)
        # pooled over time (mean and max), frequency kept: where energy sits is part of a voice
        self.head = nn.Sequential(nn.Linear(2 * chans[-1] * freq, 256), nn.GELU(), nn.Linear(256, cfg.embedding_dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        # loudness offset is not timbre; with "band" neither is a colouring that lasts the whole crop
        x = mel - mel.mean(dim=2 if self.cfg.input_norm == "band" else (1, 2), keepdim=True)
        if self.cfg.time_pool > 1:
            x = F.avg_pool1d(x, self.cfg.time_pool, ceil_mode=True)
        h = self.blocks(x.unsqueeze(1))  # [B, C, F', T']
        pooled = torch.cat([h.mean(dim=3), h.amax(dim=3)], dim=1).flatten(1)
        return F.normalize(self.head(pooled), dim=-1)
