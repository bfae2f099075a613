"""Mel-domain pitch shift / time stretch vs librosa's waveform versions (then the same mel).

Agreement reached (synthetic sung phrase, 4 s, 16 kHz, our 48-band log-mel), measured when written:
  pitch shift +-1.5..3 st: correlation 0.90-0.93 (un-shifted baseline 0.48-0.71),
                           log-spectral distance 5.5-7.5 dB (baseline 11-15 dB)
  time stretch 0.65..1.7:  correlation 0.94-0.96 (un-stretched baseline 0.36-0.51),
                           log-spectral distance 4.9-5.6 dB (baseline 13.5-16 dB)
The asserts below leave margin for librosa/resampler version drift.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from vocalcli import audio, transforms
from vocalcli.config import AudioConfig

SR = 16000
CFG = AudioConfig(start_s=0, end_s=4)


def _phrase(seed: int = 0, dur: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(dur * SR)
    t = np.arange(n) / SR
    notes = rng.integers(55, 72, size=8)
    f0 = 440 * 2 ** ((np.repeat(notes, n // 8 + 1)[:n] - 69) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    ph = 2 * np.pi * np.cumsum(f0) / SR
    y = sum((1 / k) * np.sin(k * ph) for k in range(1, 20))
    env = np.tile(np.hanning(n // 8 + 1), 8)[:n]
    return (0.1 * y * env + 0.001 * rng.standard_normal(n)).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _lsd_db(a: np.ndarray, b: np.ndarray) -> float:
    """Log-spectral distance between natural-log mels, in dB (RMS over bands, mean over frames)."""
    return float(np.sqrt(((10 / np.log(10) * (a - b)) ** 2).mean(axis=0)).mean())


@pytest.fixture(scope="module")
def phrase() -> tuple[np.ndarray, np.ndarray]:
    y = _phrase()
    return y, audio.log_mel(y, CFG)


@pytest.mark.parametrize("semitones", [-3.0, -1.5, 2.0, 3.0])
def test_pitch_shift_matches_librosa(phrase, semitones):
    y, mel = phrase
    ref = audio.log_mel(librosa.effects.pitch_shift(y, sr=SR, n_steps=semitones), CFG)
    ours = transforms.pitch_shift(torch.from_numpy(mel)[None], torch.tensor([semitones]), CFG)[0].numpy()
    c, c0 = _corr(ours, ref), _corr(mel, ref)
    d, d0 = _lsd_db(ours, ref), _lsd_db(mel, ref)
    assert c > 0.85 and c > c0 + 0.15, (c, c0)
    assert d < 9.0 and d < d0 - 3.0, (d, d0)


@pytest.mark.parametrize("rate", [0.65, 0.8, 1.25, 1.7])
def test_time_stretch_matches_librosa(phrase, rate):
    y, mel = phrase
    ref = audio.log_mel(librosa.effects.time_stretch(y, rate=rate), CFG)
    n = min(ref.shape[1], int(mel.shape[1] / rate) - 1)
    ours = transforms.time_stretch(torch.from_numpy(mel)[None], torch.tensor([rate]), n)[0].numpy()
    ref = ref[:, :n]
    m = min(n, mel.shape[1])
    c, c0 = _corr(ours, ref), _corr(mel[:, :m], ref[:, :m])
    d, d0 = _lsd_db(ours, ref), _lsd_db(mel[:, :m], ref[:, :m])
    assert c > 0.9 and c > c0 + 0.3, (c, c0)
    assert d < 7.0 and d < d0 - 5.0, (d, d0)


def test_identity_parameters_change_nothing():
    x = torch.randn(3, 48, 50)
    assert torch.allclose(transforms.pitch_shift(x, torch.zeros(3), CFG), x, atol=1e-4)
    assert torch.allclose(transforms.time_stretch(x, torch.ones(3), 50), x)


def test_batch_is_per_sample():
    """One call with per-sample parameters == separate calls (the batch is vectorised, not shared)."""
    x = torch.randn(3, 48, 80)
    st, rate = torch.tensor([-2.0, 0.5, 3.0]), torch.tensor([0.65, 1.0, 1.7])
    ps, ts = transforms.pitch_shift(x, st, CFG), transforms.time_stretch(x, rate, 40)
    for i in range(3):
        assert torch.allclose(ps[i], transforms.pitch_shift(x[i:i + 1], st[i:i + 1], CFG)[0])
        assert torch.allclose(ts[i], transforms.time_stretch(x[i:i + 1], rate[i:i + 1], 40)[0])


def test_random_parameters_respect_ranges():
    g = torch.Generator().manual_seed(0)
    s = transforms.random_semitones(1000, 3.0, 1.0, g)
    assert s.abs().min() >= 1.0 and s.abs().max() <= 3.0 and (s < 0).any() and (s > 0).any()
    r = transforms.random_rates(100, [0.65, 1.7], g)
    assert sorted({round(v, 2) for v in r.tolist()}) == [0.65, 1.7]
    assert transforms.source_frames(313, [0.65, 1.7], True) >= 313 * 1.7
