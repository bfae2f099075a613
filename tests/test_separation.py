"""separation: the harmonic fallback must improve a synthetic chorale-like mixture; plumbing of every backend."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from vocalcli import f0 as f0_mod
from vocalcli import separation
from vocalcli.errors import VocalError
from vocalcli.separation import SeparationError, demucs_available, separate, si_sdr

SR = 16000  # Hz
DUR = 10.0  # s


def _notes_f0(midis: list[int], note_s: float, n: int, glide_s: float = 0.06) -> np.ndarray:
    """Per-sample f0 in Hz [n] of a note sequence, with a short portamento between notes."""
    t = np.arange(n) / SR
    idx = np.minimum((t // note_s).astype(int), len(midis) - 1)
    semis = np.asarray(midis, dtype=np.float64)[idx]
    k = max(1, int(glide_s * SR))
    semis = np.convolve(np.pad(semis, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, mode="valid")
    return 440.0 * 2 ** ((semis - 69) / 12)


def _harmonic(f0: np.ndarray, amps) -> np.ndarray:
    """Sum of harmonics of a time-varying f0 [n]; ``amps(h, freq)`` gives each harmonic's amplitude [n]."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    out = np.zeros_like(f0)
    for h in range(1, 40):
        freq = h * f0
        a = amps(h, freq) * (freq < SR / 2 - 200)
        out += a * np.sin(h * phase)
    return out


def chorale_mixture(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mixture, vocal), float32 [n] at 16 kHz, 10 s, vocal-to-accompaniment ratio 0 dB.

    Voice: a melody of 0.625 s notes with 5.5 Hz / +-40 cent vibrato, portamento, and a vowel-like
    formant envelope (peaks near 600, 1100, 2600 Hz). Accompaniment: three lower lines that move with
    the melody (a third, a sixth and an octave + a fifth below, as in a chorale), in a bright, decaying
    organ/piano-like timbre without vibrato, plus a little noise.
    """
    rng = np.random.default_rng(seed)
    n = int(DUR * SR)
    t = np.arange(n) / SR
    note_s = 0.625
    melody = [int(m) for m in rng.choice([67, 69, 71, 72, 74, 76, 77, 79], size=16)]
    f0 = _notes_f0(melody, note_s, n) * 2 ** (40 / 1200 * np.sin(2 * np.pi * 5.5 * t))

    def formants(h: int, freq: np.ndarray) -> np.ndarray:
        env = sum(g * np.exp(-0.5 * ((freq - fc) / bw) ** 2)
                  for fc, bw, g in ((600, 150, 1.0), (1100, 200, 0.6), (2600, 300, 0.25)))
        return (0.05 + env) / h ** 0.5

    vocal = _harmonic(f0, formants)
    vocal *= np.clip(np.minimum(t, DUR - t) / 0.05, 0, 1)  # no click at the ends
    acc = np.zeros(n)
    decay = np.exp(-2.5 * (t % note_s))  # every note is re-struck
    for interval in (-4, -9, -19):  # a third, a sixth, an octave + a fifth below
        line = _notes_f0([m + interval for m in melody], note_s, n, glide_s=0.005)
        acc += _harmonic(line, lambda h, freq: np.full_like(freq, 1.0 / h)) * decay
    acc += 0.02 * rng.standard_normal(n) * np.std(acc)
    acc *= np.std(vocal) / np.std(acc)
    mix = vocal + acc
    peak = np.abs(mix).max() / 0.9
    return (mix / peak).astype(np.float32), (vocal / peak).astype(np.float32)


@pytest.fixture(scope="module")
def mixture() -> tuple[np.ndarray, np.ndarray]:
    return chorale_mixture()


def test_si_sdr_basics() -> None:
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(16000)
    noise = rng.standard_normal(16000)
    assert si_sdr(0.3 * ref, ref) > 100  # scale-invariant
    assert abs(si_sdr(ref + noise, ref) - 0.0) < 0.5  # equal power: ~0 dB
    assert si_sdr(np.zeros(10), np.zeros(10)) == float("-inf")


def test_harmonic_improves_si_sdr(mixture) -> None:
    """The margin: the harmonic mask measures +6.3 dB SI-SDRi here (+4.8 dB mean on 12 corpus songs;
    REPET-SIM gets -4.5 dB here); >= +4 dB leaves headroom for numerical drift yet fails if the
    tracker or the mask breaks (a mask on the wrong line gives < 0 dB)."""
    mix, vocal = mixture
    est, used = separate(mix, SR, "harmonic")
    assert used == "harmonic"
    assert est.dtype == np.float32 and est.shape == mix.shape
    assert si_sdr(est, vocal) - si_sdr(mix, vocal) >= 4.0


def test_harmonic_tracks_the_melody(mixture) -> None:
    """The f0 tracker follows the top (sung) line, not the accompaniment or a subharmonic: measured 86 %
    of frames within 100 cents of the score (the rest are vibrato peaks, portamenti and note edges)."""
    mix, _ = mixture
    n_fft = f0_mod.fft_size(SR)
    hop = n_fft // 4
    rng = np.random.default_rng(0)
    melody = [int(m) for m in rng.choice([67, 69, 71, 72, 74, 76, 77, 79], size=16)]
    truth = _notes_f0(melody, 0.625, mix.size)[::hop]
    f0 = f0_mod.track_f0(np.abs(f0_mod.stft(mix, n_fft, hop)), SR, n_fft)
    cents = 1200 * np.abs(np.log2(f0[: truth.size] / truth[: f0.size]))
    assert np.mean(cents < 100) > 0.75


def _voice_over_steady_chord(sr: int = 16000, seconds: float = 6.0, acc_db: float = 5.0) -> np.ndarray:
    """A near-sinusoidal 600 Hz voice with 5.5 Hz vibrato over a louder, perfectly steady 200 Hz note with
    10 partials: the 200 Hz candidate collects the voice (its 3rd partial) plus its own partials."""
    t = np.arange(int(sr * seconds)) / sr
    phase = 2 * np.pi * np.cumsum(600 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))) / sr
    voice = np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase)
    acc = sum(np.sin(2 * np.pi * k * 200.0 * t) / k for k in range(1, 11))
    acc *= 10 ** (acc_db / 20) * voice.std() / acc.std()
    return (voice + acc).astype(np.float32)


def test_tracker_prefers_the_fluctuating_voice_over_a_louder_steady_note(monkeypatch) -> None:
    sr = 16000
    n_fft = f0_mod.fft_size(sr)
    mag = np.abs(f0_mod.stft(_voice_over_steady_chord(sr), n_fft, n_fft // 4))
    assert np.median(f0_mod.track_f0(mag, sr, n_fft)) == pytest.approx(600, rel=0.03)
    # without the fluctuation weight the steady note wins: the weight is what finds the voice
    monkeypatch.setattr(f0_mod, "fluctuation_weight", lambda m, w: np.ones_like(m))
    assert np.median(f0_mod.track_f0(mag, sr, n_fft)) == pytest.approx(200, rel=0.03)


@pytest.mark.parametrize("n", [0, 1, 1000, 16001])
def test_lengths_and_dtype(n: int) -> None:
    y = (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float64)
    for method in ("harmonic", "none"):
        est, _ = separate(y, SR, method)
        assert est.shape == (n,) and est.dtype == np.float32


def test_repet_runs(mixture) -> None:
    mix, _ = mixture
    est, used = separate(mix, SR, "repet")
    assert used == "repet" and est.shape == mix.shape and est.dtype == np.float32
    assert np.isfinite(est).all()


def test_none_is_identity(mixture) -> None:
    mix, _ = mixture
    est, used = separate(mix, SR, "none")
    assert used == "none"
    np.testing.assert_array_equal(est, mix)


def test_auto_reports_the_backend(mixture, monkeypatch) -> None:
    mix, _ = mixture
    monkeypatch.setattr(separation, "demucs_available", lambda: (False, "no weights"))
    est, used = separate(mix[:SR], SR, "auto")
    assert used == "harmonic" and est.shape == (SR,)


def test_bad_method_and_shape() -> None:
    with pytest.raises(SeparationError, match="unknown separation method 'spleeter'"):
        separate(np.zeros(100, np.float32), SR, "spleeter")
    with pytest.raises(VocalError, match="mono"):
        separate(np.zeros((2, 100), np.float32), SR, "harmonic")


def test_demucs_unavailable_says_what_to_do(monkeypatch) -> None:
    pytest.importorskip("demucs")
    monkeypatch.setattr(separation, "_weights_path", lambda: None)
    ok, why = demucs_available()
    assert not ok and "htdemucs" in why and "--separate harmonic" in why
    with pytest.raises(SeparationError, match="--separate harmonic"):
        separate(np.zeros(1000, np.float32), SR, "demucs")


def _tiny_htdemucs():
    from demucs.htdemucs import HTDemucs

    # untrained and small (channels=8, one transformer layer) so the plumbing test runs in a second on CPU
    return HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=8, t_layers=1,
                    segment=4).eval()


def test_demucs_plumbing_with_untrained_model() -> None:
    """Sample rates, stereo duplication, vocals index and exact length, with an untrained HTDemucs."""
    pytest.importorskip("demucs")
    import torch

    torch.manual_seed(0)
    model = _tiny_htdemucs()
    assert model.samplerate == 44100 and model.audio_channels == 2
    y = (0.1 * np.random.default_rng(0).standard_normal(int(2.5 * SR) + 7)).astype(np.float32)
    out = separation._separate_with_model(y, SR, model)
    assert out.shape == y.shape and out.dtype == np.float32 and np.isfinite(out).all()


def test_demucs_checkpoint_loading(tmp_path: Path) -> None:
    """A demucs .th package loads after its sha256 check; a wrong checksum is a clear error."""
    pytest.importorskip("demucs")
    import torch

    model = _tiny_htdemucs()
    args, kwargs = model._init_args_kwargs
    path = tmp_path / "tiny.th"
    torch.save({"klass": type(model), "args": args, "kwargs": kwargs, "state": model.state_dict()}, path)
    prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    loaded = separation._load_checkpoint(path, prefix)
    assert list(loaded.sources) == ["drums", "bass", "other", "vocals"]
    with pytest.raises(SeparationError, match="corrupt"):
        separation._load_checkpoint(path, "00000000" if prefix != "00000000" else "11111111")


def test_pitch_from_the_separators_track_matches_tracking_the_estimate(mixture) -> None:
    """prepare takes the pitch statistics from the harmonic separator's own track (no second tracking
    pass); they must agree with tracking the separated vocal, and with the sung melody's register."""
    from vocalcli.pitch import separate_with_pitch, stats_from_track, track_of

    def pitch_stats(y):
        return track_of(y, SR).stats()

    mix, vocal = mixture
    est, used, stats, track = separate_with_pitch(mix, SR, "harmonic")
    assert used == "harmonic"
    np.testing.assert_array_equal(est, separate(mix, SR, "harmonic")[0])
    again = pitch_stats(est)
    truth = pitch_stats(vocal)
    for k in ("f0_hz", "f0_p75_hz"):
        assert abs(np.log2(stats[k] / again[k])) < 1 / 12  # within a semitone
        assert abs(np.log2(stats[k] / truth[k])) < 1 / 12
    none = separate_with_pitch(mix, SR, "none")
    assert none[1] == "none" and none[0] is mix
    # the track the melody vector reads: the separator's own, on the louder frames the sung register
    assert stats_from_track(track.f0_hz, track.energy) == stats
    own = track_of(vocal, SR)
    assert own.hop_s == track.hop_s and own.f0_hz.shape == track.f0_hz.shape
    loud = own.energy >= np.median(own.energy)
    agree = np.abs(np.log2(track.f0_hz[loud] / own.f0_hz[loud])) < 1 / 24
    assert agree.mean() > 0.8


def test_model_input_is_the_models_rate_and_channels() -> None:
    """prepare gives demucs the decoded window as it was trained on: 44.1 kHz stereo."""
    rng = np.random.default_rng(0)
    stereo = rng.standard_normal((2, 22050)).astype(np.float32)
    x = separation.to_model_input(stereo, 22050, 44100, 2)
    assert x.shape == (2, 44100) and x.dtype == np.float32
    mono = separation.to_model_input(stereo[:1], 44100, 44100, 2)
    np.testing.assert_array_equal(mono[0], mono[1])
    six = separation.to_model_input(np.ones((6, 100), np.float32), 44100, 44100, 2)
    assert six.shape == (2, 100) and np.allclose(six, 1.0)
    np.testing.assert_array_equal(separation.to_model_input(stereo, 44100, 44100, 2), stereo)


def test_demucs_windows_in_a_batch_equal_one_at_a_time() -> None:
    """Several songs per demucs call (a GPU needs them) give each song what it gets alone, at 16 kHz."""
    pytest.importorskip("demucs")
    import torch

    torch.manual_seed(0)
    model = _tiny_htdemucs()
    rng = np.random.default_rng(1)
    wins = [(0.1 * rng.standard_normal((2, n))).astype(np.float32) for n in (44100 * 3, 44100 * 3, 44100 * 2)]
    together = separation.demucs_vocals(model, wins, 44100, 16000, "cpu")
    alone = [separation.demucs_vocals(model, [w], 44100, 16000, "cpu")[0] for w in wins]
    assert [v.shape for v in together] == [(48000,), (48000,), (32000,)]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_banded_viterbi_finds_the_best_path() -> None:
    """f0.viterbi_band against the textbook dynamic programme over every state pair (band as a hard limit)."""
    from vocalcli import f0

    rng = np.random.default_rng(4)
    score = rng.standard_normal((12, 40)).astype(np.float32)
    jump, band = 0.7, 3
    n, t = score.shape
    delta, back = score[:, 0].astype(np.float64), np.zeros((t, n), dtype=np.int64)
    for k in range(1, t):
        cost = delta[None, :] - jump * np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
        cost[np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) > band] = -np.inf
        back[k] = cost.argmax(axis=1)
        delta = cost.max(axis=1) + score[:, k]
    path = [int(delta.argmax())]
    for k in range(t - 1, 0, -1):
        path.append(int(back[k, path[-1]]))
    np.testing.assert_array_equal(f0.viterbi_band(score, jump, band), path[::-1])
