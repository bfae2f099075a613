"""The melody vector's pitch part (vocalcli/pitch_profile.py): what it must ignore and what it must keep."""

from __future__ import annotations

import numpy as np
import pytest

from vocalcli import pitch_profile as pp

BEAT = 20.0  # frames per beat


def sung(notes: list[int], beats: list[float], period: float = BEAT, transpose: float = 0.0,
         octave_errors: float = 0.0, seed: int = 0, repeats: int = 8) -> np.ndarray:
    """A [2, T] track: the phrase ``notes`` (midi) with durations ``beats``, sung ``repeats`` times at
    ``period`` frames per beat, each followed by a quiet one-beat rest (where a tracker follows the
    band: a random pitch)."""
    rng = np.random.default_rng(seed)
    ends = np.cumsum(beats)
    phrase = ends[-1] + 1.0  # beats, with the rest
    t_beats = np.arange(int(repeats * phrase * period)) / period
    pos = t_beats % phrase
    rest = pos >= ends[-1]
    midi = np.asarray(notes, dtype=np.float64)[np.minimum(np.searchsorted(ends, pos, side="right"), len(notes) - 1)]
    f0 = 440 * 2 ** ((midi + transpose - 69) / 12)
    f0[rest] = rng.uniform(80, 600, int(rest.sum()))
    db = np.where(rest, -40.0, -10.0) + rng.normal(0, 0.5, f0.size)
    if octave_errors:
        f0[rng.random(f0.size) < octave_errors] /= 2
    return np.stack([f0, db]).astype(np.float32)


A = ([60, 62, 64, 65, 67, 65, 64, 62], [1, 1, 1, 1, 2, 1, 1, 2])
B = ([60, 60, 67, 67, 69, 69, 67], [1, 1, 1, 1, 1, 1, 2])  # shorter phrase, other notes


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_same_melody_in_another_key_tempo_and_octave_errors_stays_close_other_melody_does_not() -> None:
    ref = pp.profile(sung(*A), BEAT)
    assert ref.shape == (255,) and np.isclose(np.linalg.norm(ref), 1.0, atol=1e-5)
    # another key and a 1.3x faster tempo (lags are counted in beats) by another voice with octave slips
    other = pp.profile(sung(*A, period=BEAT / 1.3, transpose=5, octave_errors=0.1, seed=1), BEAT / 1.3)
    different = pp.profile(sung(*B, seed=2), BEAT)
    assert cos(ref, other) > 0.9
    assert cos(ref, different) < cos(ref, other) - 0.3
    # read at the wrong beat, the same song is no longer the same vector: the beat matters
    assert cos(ref, pp.profile(sung(*A), BEAT * 1.5)) < cos(ref, other)


def test_quiet_frames_are_left_out() -> None:
    """Where the voice rests the tracker follows the band: the louder frames alone decide the profile."""
    track = sung(*A)
    noisy = track.copy()
    quiet = noisy[1] < -30
    noisy[0, quiet] = np.random.default_rng(5).uniform(80, 600, int(quiet.sum()))
    assert np.allclose(pp.profile(track, BEAT), pp.profile(noisy, BEAT), atol=1e-6)
    # reading every frame, the band's frames change it
    assert not np.allclose(pp.profile(track, BEAT, loud_fraction=1.0), pp.profile(noisy, BEAT, loud_fraction=1.0),
                           atol=1e-3)


def test_track_on_the_mels_frames() -> None:
    f0 = np.arange(100, dtype=np.float64) + 100
    e = np.full(100, 10.0)
    out = pp.track_at_frames(f0, e, track_hop_s=0.02, frame_hop_s=0.01, n_frames=150)
    assert out.shape == (2, 150) and out.dtype == np.float32
    assert out[0, 0] == 100 and out[0, 40] == 120 and out[0, -1] == 174  # nearest tracker frame (74.5 rounds to even)
    assert np.allclose(out[1], 10.0)  # energy in dB
    assert not pp.track_at_frames(np.zeros(0), np.zeros(0), 0.016, 0.016, 5).any()


@pytest.mark.parametrize("track", [np.zeros((2, 0), np.float32), np.zeros((2, 1), np.float32)])
def test_degenerate_tracks_give_zeros(track: np.ndarray) -> None:
    assert not pp.profile(track, BEAT).any()
