"""A synthetic labelled singing library: what `vocal demo` and the tests run on.

Each singer is a glottal-like harmonic source (spectral tilt, vibrato rate/depth, breathiness) through
singer-specific formants (vocal-tract length scales F1-F4: men lower, women higher; each singer's own
version of every vowel and speed of moving between vowels), singing melodies in their own range.
Every singer sings the same set of melodies (transposed to their range), so melody
retrieval across singers can be measured. The accompaniment is chords that follow the melody's harmony
(piano-like decaying partials + a bass line), like the chorale mixtures MR removal is judged on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOWELS = {  # F1, F2, F3, F4 in Hz for an adult male vocal tract (Peterson & Barney, rounded)
    "a": (730, 1090, 2440, 3400), "e": (530, 1840, 2480, 3500), "i": (270, 2290, 3010, 3700),
    "o": (570, 840, 2410, 3400), "u": (300, 870, 2240, 3300),
}
SCALE = np.array([0, 2, 4, 5, 7, 9, 11])  # major scale degrees, semitones


@dataclass(frozen=True)
class Singer:
    name: str
    gender: str
    genre: str
    tract: float  # formant scale: 1.0 male average, ~1.17 female
    base_midi: int  # tonic of the singer's range
    tilt: float  # harmonic amplitude ~ k^-tilt
    vibrato_hz: float
    vibrato_cents: float
    breath: float  # noise-to-harmonic ratio
    bandwidth: float  # formant bandwidth scale
    vowel_scale: tuple = ()  # per vowel (VOWELS order), F1-F4 multipliers: this singer's own vowels
    glide: int = 9  # control steps (5 ms) of the vowel/pitch transition: how fast this singer articulates


def default_singers(n: int = 6, seed: int = 0) -> list[Singer]:
    rng = np.random.default_rng(seed)
    names = ["alice", "bruno", "chloe", "dmitri", "elena", "farid", "grace", "hugo", "iris", "jonas"]
    out = []
    for i in range(n):
        female = i % 2 == 0
        out.append(Singer(
            name=names[i % len(names)] + ("" if i < len(names) else str(i)),
            gender="female" if female else "male",
            genre=["pop", "jazz", "folk"][i % 3],
            tract=float((1.17 if female else 1.0) * rng.uniform(0.93, 1.07)),
            base_midi=int((60 if female else 48) + rng.integers(-2, 3)),
            tilt=float(rng.uniform(0.9, 1.6)),
            vibrato_hz=float(rng.uniform(4.5, 6.5)),
            vibrato_cents=float(rng.uniform(20, 70)),
            breath=float(rng.uniform(0.005, 0.04)),
            bandwidth=float(rng.uniform(0.8, 1.4)),
            # real singers differ in how they form each vowel and how fast they move between them, not
            # only in vocal-tract length (a pure scale would make every singer's articulation alike)
            vowel_scale=tuple(tuple(float(v) for v in rng.uniform([0.85, 0.88, 0.94, 0.96], [1.15, 1.12, 1.06, 1.04]))
                              for _ in VOWELS),
            glide=int(rng.integers(3, 12)) * 2 + 1,
        ))
    return out


def melody(melody_id: int, seconds: float, bpm: float) -> list[tuple[int, float]]:
    """A melody as (scale step relative to tonic, beats), deterministic per id; loops to fill ``seconds``."""
    rng = np.random.default_rng(1000 + melody_id)
    phrase = []
    step = 0
    for _ in range(16):
        step = int(np.clip(step + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), -2, 9))
        phrase.append((step, float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))))
    out, t = [], 0.0
    while t < seconds:
        for note in phrase:
            out.append(note)
            t += note[1] * 60 / bpm
    return out


def _midi(tonic: int, step: int) -> float:
    octave, deg = divmod(step, 7)
    return tonic + 12 * octave + SCALE[deg]


def _saw(freq: np.ndarray, sr: int) -> np.ndarray:
    """Band-limited sawtooth for a time-varying frequency [n] in Hz (polyBLEP: no audible aliasing)."""
    dt = np.clip(freq / sr, 1e-6, 0.5)
    ph = np.mod(np.cumsum(dt), 1.0)
    y = 2 * ph - 1
    lo = ph < dt
    x = ph[lo] / dt[lo]
    y[lo] -= x + x - x * x - 1
    hi = ph > 1 - dt
    x = (ph[hi] - 1) / dt[hi]
    y[hi] -= x * x + x + x + 1
    return y


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    import librosa

    return librosa.stft(x.astype(np.float32), n_fft=n_fft, hop_length=hop)


def _istft(spec: np.ndarray, hop: int, n: int) -> np.ndarray:
    import librosa

    return librosa.istft(spec, hop_length=hop, length=n).astype(np.float64)


def _envelope(freqs: np.ndarray, formants: np.ndarray, f0: np.ndarray, singer: Singer) -> np.ndarray:
    """Vocal-tract gain [frames, bins]: formant resonances times the singer's extra spectral tilt."""
    bws = np.array([80, 100, 140, 200]) * singer.bandwidth
    gain = np.full((formants.shape[0], freqs.size), 0.02)
    for j in range(4):
        gain += (1.0 / (j + 1)) / (1 + ((freqs[None, :] - formants[:, j : j + 1]) / bws[j]) ** 2)
    tilt = (np.maximum(freqs[None, :], 1.0) / f0[:, None]) ** (-(singer.tilt - 1.0))
    return gain * np.minimum(tilt, 1.0) * (freqs[None, :] < 7500)


def sing(singer: Singer, melody_id: int, seconds: float, sr: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(vocal, accompaniment), float32 [n] each, ``seconds`` long at ``sr``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    bpm = float(rng.uniform(80, 110))
    notes = melody(melody_id, seconds + 1, bpm)
    ctrl_rate = 200  # Hz, control signals (f0, formants, envelopes)
    nc = int(seconds * ctrl_rate) + 2
    f0_midi = np.zeros(nc)
    env = np.zeros(nc)
    formants = np.zeros((nc, 4))
    chord_root = np.zeros(nc)
    vowel_keys = list(VOWELS)
    i = 0
    for step, beats in notes:
        length = int(beats * 60 / bpm * ctrl_rate)
        j = min(i + length, nc)
        if i >= nc:
            break
        f0_midi[i:j] = _midi(singer.base_midi, step)
        a = np.ones(j - i)
        ramp = min(8, len(a) // 3)
        if ramp:
            a[:ramp] = np.linspace(0, 1, ramp)
            a[-ramp:] = np.linspace(1, 0.3, ramp)
        env[i:j] = a
        v = int(rng.integers(len(vowel_keys)))
        own = np.array(singer.vowel_scale[v]) if singer.vowel_scale else 1.0
        formants[i:j] = np.array(VOWELS[vowel_keys[v]]) * own * singer.tract
        chord_root[i:j] = _midi(singer.base_midi - 12, (step // 2) * 2 - 2)
        i = j
    # glide between notes (portamento) and vibrato
    kernel = np.hanning(9) / np.hanning(9).sum()
    f0_midi = np.convolve(f0_midi, kernel, mode="same")
    art = np.hanning(singer.glide) / np.hanning(singer.glide).sum()
    formants = np.stack([np.convolve(formants[:, k], art, mode="same") for k in range(4)], axis=1)
    t_c = np.arange(nc) / ctrl_rate
    f0_midi = f0_midi + singer.vibrato_cents / 100 * np.sin(2 * np.pi * singer.vibrato_hz * t_c)
    f0 = 440.0 * 2 ** ((f0_midi - 69) / 12)
    t = np.arange(n) / sr
    up = lambda x: np.interp(t, t_c, x)  # noqa: E731
    # glottal-like source: a band-limited (polyBLEP) sawtooth has every harmonic at 1/k
    source = _saw(up(f0), sr) * up(env)
    source += rng.standard_normal(n) * singer.breath * up(env) * 3
    # vocal tract: time-varying formant envelope applied frame by frame in the STFT domain
    n_fft, hop = 1024, 256
    spec = _stft(source, n_fft, hop)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    frame_t = np.arange(spec.shape[1]) * hop / sr
    fr_formants = np.stack([np.interp(frame_t, t_c, formants[:, k]) for k in range(4)], axis=1)
    fr_f0 = np.interp(frame_t, t_c, f0)
    gain = _envelope(freqs, fr_formants, fr_f0, singer)
    vocal = _istft(spec * gain.T, hop, n)
    vocal /= np.abs(vocal).max() + 1e-9

    # accompaniment: the chord under the melody, piano-like re-strikes, darker timbre than the voice
    beat = 60 / bpm
    strike = np.mod(t, 2 * beat) / (2 * beat)
    decay = np.exp(-3.0 * strike)
    root_hz = up(440.0 * 2 ** ((chord_root - 69) / 12))
    acc = np.zeros(n)
    for interval, amp in ((0, 1.0), (4, 0.7), (7, 0.7), (-12, 0.9)):
        acc += amp * _saw(root_hz * 2 ** (interval / 12), sr)
    acc_spec = _stft(acc * decay, n_fft, hop)
    acc = _istft(acc_spec * (1 / (1 + (freqs / 900.0) ** 2))[:, None], hop, n)
    acc /= np.abs(acc).max() + 1e-9
    return vocal.astype(np.float32), acc.astype(np.float32)


@dataclass
class LibraryPlan:
    """What to write: one job per song (arguments of ``write_song``) and the label files."""

    out: Path
    singers: list[Singer]
    jobs: list[tuple]
    labels: list[dict[str, str]]

    def write_labels(self) -> None:
        with open(self.out / "singers.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["singer", "gender", "genre"])
            for s in self.singers:
                w.writerow([s.name, s.gender, s.genre])
        with open(self.out / "melody_labels.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["source", "melody"])
            w.writeheader()
            w.writerows(self.labels)


def plan_library(out: Path, n_singers: int = 6, songs_per_singer: int = 8, seconds: float = 160.0,
                 short_seconds: float = 100.0, n_short: int = 1, sr: int = 22050, seed: int = 0,
                 formats: tuple[str, ...] = ("flac", "wav", "ogg"), vocal_to_accomp_db: float = 3.0,
                 stems: bool = False) -> LibraryPlan:
    """Plan ``out/<singer>/<song>.<ext>`` mixtures; every singer sings melodies 0..songs-1.

    The first ``n_short`` songs of every other singer are ``short_seconds`` long (too short for the
    window), so balancing has something to replace. With ``stems`` clean vocals go to ``out/../stems``.
    """
    out = Path(out)
    singers = default_singers(n_singers, seed)
    jobs, labels = [], []
    for si, s in enumerate(singers):
        for j in range(songs_per_singer):
            dur = short_seconds if (j < n_short and si % 2 == 1) else seconds
            name = f"song{j + 1:02d}.{formats[(si + j) % len(formats)]}"
            stem = out.parent / "stems" / s.name / f"song{j + 1:02d}.flac" if stems else None
            jobs.append((s, j, dur, sr, seed * 10_000 + si * 100 + j, out / s.name / name, vocal_to_accomp_db,
                         stem))
            labels.append({"source": f"{s.name}/{name}", "melody": f"m{j:02d}"})
    return LibraryPlan(out, singers, jobs, labels)


def write_song(singer: Singer, melody_id: int, seconds: float, sr: int, seed: int, path: Path,
               vocal_to_accomp_db: float, stem_path: Path | None = None) -> None:
    """Sing one song and write the mixture (and optionally the clean vocal stem)."""
    import soundfile as sf

    vocal, acc = sing(singer, melody_id, seconds, sr, seed)
    mix = 0.5 * (vocal + 10 ** (-vocal_to_accomp_db / 20) * acc)
    for target, y in ((path, mix), (stem_path, 0.5 * vocal)):
        if target is None:
            continue
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        # blockwise: libsndfile's Vorbis encoder overflows its stack on one multi-minute write
        with sf.SoundFile(target, "w", sr, 1) as fh:
            for i in range(0, len(y), 1 << 15):
                fh.write(y[i : i + (1 << 15)])


def make_library(out: Path, **kw) -> dict:  # noqa: ANN003
    """Write the whole library sequentially (see ``plan_library`` for the arguments)."""
    plan = plan_library(out, **kw)
    for job in plan.jobs:
        write_song(*job)
    plan.write_labels()
    return {"singers": len(plan.singers), "songs": len(plan.jobs), "dir": str(out)}
