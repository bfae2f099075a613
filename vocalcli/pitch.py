"""Singing pitch statistics of a (separated) vocal: the voice's register.

Why: register is the most singer-independent cue to gender (men and women sing about an octave apart),
while a timbre embedding or MFCCs learned from a handful of singers do not generalise to unseen ones
(docs/quality.md). Uses the predominant-F0 tracker of vocalcli/f0.py over the whole window: with
`harmonic` MR removal the separator's own track (free), otherwise a track of the vocal estimate. The
same track, stored by prepare, is what the melody vector's pitch part reads (vocalcli/pitch_profile.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PITCH_FIELDS = ("f0_hz", "f0_p75_hz")
"""Catalog columns: median and 75th percentile of the tracked f0 over the louder half of frames."""

def stats_from_track(f0: np.ndarray, energy: np.ndarray) -> dict[str, float]:
    """{'f0_hz': median f0, 'f0_p75_hz': 75th percentile} in Hz over the louder half of the frames of a
    track: f0 [frames] in Hz, energy [frames] of the tracked signal; NaN for an empty track.

    The upper percentile is robust to the tracker's octave-down errors on mixtures (it has no voicing
    decision, so quiet or accompaniment-dominated frames can fall on a lower line).
    """
    if f0.size == 0:
        return {k: float("nan") for k in PITCH_FIELDS}
    lf = np.log2(f0[energy >= np.median(energy)])
    p50, p75 = np.percentile(lf, [50, 75])
    return {"f0_hz": float(2**p50), "f0_p75_hz": float(2**p75)}


@dataclass(frozen=True)
class Track:
    """The f0 tracker's output over a whole window: f0 [frames] in Hz, the tracked signal's energy per
    frame, and the tracker's hop in seconds. `at_frames` puts it on the mel's frames (what prepare
    stores in pitch/<song_id>.npy for the melody vector, vocalcli/pitch_profile.py)."""

    f0_hz: np.ndarray
    energy: np.ndarray
    hop_s: float

    def at_frames(self, frame_hop_s: float, n_frames: int) -> np.ndarray:
        from vocalcli.pitch_profile import track_at_frames

        return track_at_frames(self.f0_hz, self.energy, self.hop_s, frame_hop_s, n_frames)

    def stats(self) -> dict[str, float]:
        """The register statistics prepare stores for gender (`stats_from_track`)."""
        return stats_from_track(self.f0_hz, self.energy)


def track_of(y: np.ndarray, sr: int) -> Track:
    """The f0 track of mono ``y`` over its whole length (~0.4 s per 2-minute window on one core)."""
    from vocalcli import f0 as f0_mod

    n_fft = f0_mod.fft_size(sr)
    hop = n_fft // f0_mod.HOP_FRACTION
    x = np.pad(np.asarray(y, dtype=np.float32), (0, max(0, n_fft - y.size)))
    mag = np.abs(f0_mod.stft(x, n_fft, hop))
    return Track(f0_mod.track_f0(mag, sr, n_fft), np.square(mag).sum(axis=0), hop / sr)


def separate_with_pitch(y: np.ndarray, sr: int, method: str) -> tuple[np.ndarray, str, dict[str, float], Track]:
    """(vocal estimate, method used, pitch statistics of the vocal, its f0 track) in one pass where possible.

    With ``harmonic`` separation the track is the separator's own (free); otherwise the estimate is
    tracked over the whole window (~0.15 CPU-s per 2-minute window). The statistics are the track's
    (`stats_from_track`). Until 2026-12-01 the other methods tracked four 8 s excerpts for the
    statistics alone; the whole window gave the same gender on the corpus stems (docs/quality.md).
    """
    from vocalcli import separation as sep
    from vocalcli.f0 import HOP_FRACTION, fft_size

    if method == "harmonic" and y.size >= 2 * fft_size(sr):
        vocal, f0, energy = sep.harmonic_separate_tracked(np.asarray(y, dtype=np.float32), sr)
        track = Track(f0, energy, fft_size(sr) // HOP_FRACTION / sr)
        return vocal, "harmonic", track.stats(), track
    if method == "none":
        vocal, used = y, "none"
    else:
        vocal, used = sep.separate(y, sr, method)
    track = track_of(vocal, sr)
    return vocal, used, track.stats(), track


def pitch_features(f0_hz: float, f0_p75_hz: float) -> np.ndarray:
    """[1] float: log2 of the 75th percentile (octaves are what separates registers).

    The median is left out: on mixtures the tracker falls on accompaniment lines often enough to pull
    it down an octave (docs/quality.md has what each choice measured).
    """
    return np.log2(np.array([f0_p75_hz], dtype=np.float64))
