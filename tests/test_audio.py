"""Decoding, resampling and the mel: every format, and equality with librosa."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import voice, write

from vocalcli import audio
from vocalcli.config import AudioConfig
from vocalcli.errors import AudioError

SMALL = AudioConfig(start_s=1.0, end_s=4.0)


def test_mel_equals_librosa() -> None:
    y = voice(5, 16000)
    ours = audio.mel_power(y, SMALL)
    ref = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=256, win_length=512, n_mels=48,
                                         fmin=0.0, fmax=8000.0)
    assert ours.shape == ref.shape
    # relative error where there is energy (the relative error of ~0 bins is float noise)
    mask = ref > ref.max() * 1e-6
    assert np.max(np.abs(ours[mask] - ref[mask]) / ref[mask]) < 1e-4


@pytest.mark.parametrize("kw", [{}, {"n_mels": 80, "n_fft": 1024, "fmin": 50.0, "fmax": 7000.0},
                                {"sample_rate": 22050, "n_fft": 1024, "fmax": 11025.0}])
def test_mel_filterbank_equals_librosa(kw: dict) -> None:
    cfg = AudioConfig(**kw)
    ref = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    ours = audio.mel_basis(cfg)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-7)


@pytest.mark.parametrize("ext", ["flac", "ogg", "mp3", "m4a", "opus"])
def test_every_format_gives_the_same_mel(tmp_path: Path, ext: str) -> None:
    y = voice(6, 44100, seed=1)
    ref_path = write(tmp_path / "ref.wav", y, 44100)
    ref = audio.log_mel(audio.load_window(ref_path, SMALL)[0], SMALL)
    got = audio.log_mel(audio.load_window(write(tmp_path / f"x.{ext}", y, 44100), SMALL)[0], SMALL)
    got = audio.fit_frames(got, ref.shape[1])
    assert got.shape == ref.shape == (48, SMALL.n_frames)
    # lossless formats are near-identical; lossy codecs drop quiet high bands, so compare where the
    # reference has energy (within 40 dB of its peak), in log-mel units (natural log: 0.5 ~ 2.2 dB)
    loud = ref > ref.max() - np.log(10**4)
    tol = 1e-3 if ext == "flac" else 0.6
    assert np.median(np.abs(got[loud] - ref[loud])) < tol
    assert np.corrcoef(got[loud], ref[loud])[0, 1] > 0.97


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_bit_depths_and_stereo_downmix(tmp_path: Path, subtype: str) -> None:
    y = voice(5, 22050, channels=2)
    p = tmp_path / "s.wav"
    sf.write(p, y, 22050, subtype=subtype)
    mono, dur = audio.load_window(p, SMALL)
    assert dur == pytest.approx(5.0)
    assert mono.shape == (3 * 16000,) and mono.dtype == np.float32
    expect = audio.resample(y.mean(axis=1)[22050:88200].astype(np.float32), 22050, 16000)
    assert np.max(np.abs(mono - expect)) < (1e-3 if subtype == "PCM_16" else 1e-5)


def test_window_seek_matches_full_decode(tmp_path: Path) -> None:
    y = voice(6, 48000)
    for ext in ("flac", "m4a"):
        p = write(tmp_path / f"w.{ext}", y, 48000)
        full = audio.decode(p).samples[0]
        win = audio.decode(p, 1.5, 3.0).samples[0]
        assert win.shape[0] == 72000
        # flac seeks are sample-exact; aac restarts its decoder state at the seek (tiny differences)
        np.testing.assert_allclose(win, full[72000:144000], atol=1e-6 if ext == "flac" else 2e-2)


def test_full_size_shape_on_a_2_35_song(tmp_path: Path) -> None:
    p = tmp_path / "long.flac"
    sf.write(p, voice(155, 22050), 22050)
    cfg = AudioConfig()
    y, dur = audio.load_window(p, cfg)
    assert dur == pytest.approx(155.0)
    mel = audio.fit_frames(audio.log_mel(y, cfg), cfg.n_frames)
    assert mel.shape == (48, 7501) == (cfg.n_mels, cfg.n_frames)
    assert audio.log_mel(y, cfg).shape == (48, 7501)  # no trimming needed for the defaults


@pytest.mark.parametrize("content", [b"", b"this is not audio at all\n" * 50, bytes(range(256)) * 40])
def test_bad_files_raise_audio_error(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.mp3"
    p.write_bytes(content)
    with pytest.raises(AudioError):
        audio.decode(p, 0, 1)


def test_help_does_not_import_heavy_modules() -> None:
    code = ("import sys; from vocalcli.cli import app; "
            "heavy = [m for m in ('torch', 'librosa', 'numpy', 'annoy', 'sklearn') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
