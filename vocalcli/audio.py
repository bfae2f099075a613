"""Decode, downmix, resample, mel: pure functions from files/arrays to arrays.

Decoding reads only the analysed window (a seek, not the whole file): a 2:30 window of a 4-minute mp3
costs ~60 % of a full decode, and nothing before `start_s` is decoded at all. soundfile (libsndfile)
handles wav/flac/ogg/mp3 with sample-accurate seeks; PyAV (bundled FFmpeg) handles everything else
(m4a/aac, opus, ...), seeking to the preceding packet and trimming by timestamps.
Mel = torch.stft + librosa.filters.mel, numerically equal to librosa.feature.melspectrogram.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from vocalcli.config import AudioConfig
from vocalcli.errors import AudioError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".aiff",
                    ".aif", ".wma", ".webm", ".mka")
"""Extensions `vocal prepare` picks up; anything else in a singer folder is ignored."""

_PREROLL_S = 0.5
"""Seconds decoded before the window after a seek and then dropped: codec warm-up."""

_INT_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24"}

_SOUNDFILE_EXT = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3"}


@dataclass
class Decoded:
    """Audio as decoded: ``samples`` is [channels, n] float32 at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int
    duration_s: float  # of the whole file, from its header (or what was decoded when unknown)


def decode(path: Path | str, start_s: float = 0.0, end_s: float | None = None) -> Decoded:
    """Decode ``[start_s, end_s)`` of a file (end None = to the end). Raises AudioError on bad input."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise AudioError(f"cannot read {path}: {e.strerror}") from e
    if size == 0:
        raise AudioError("empty file (0 bytes)")
    if path.suffix.lower() in _SOUNDFILE_EXT:
        try:
            return _decode_soundfile(path, start_s, end_s)
        except AudioError:
            raise
        except Exception:  # libsndfile may lack a codec (e.g. old builds without mp3): FFmpeg decides
            return _decode_av(path, start_s, end_s)
    return _decode_av(path, start_s, end_s)


def _decode_soundfile(path: Path, start_s: float, end_s: float | None) -> Decoded:
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        total = f.frames
        start = min(int(round(start_s * sr)), total)
        stop = total if end_s is None else min(int(round(end_s * sr)), total)
        if start > 0:
            f.seek(start)
        if f.subtype in _INT_SUBTYPES:
            # integer read + one numpy scale is ~10 % faster than libsndfile's own float conversion
            # for FLAC/PCM, and exact (int32 holds every 8-24 bit sample)
            data = f.read(max(stop - start, 0), dtype="int32", always_2d=True).astype(np.float32)
            data *= np.float32(1 / 2**31)
        else:
            data = f.read(max(stop - start, 0), dtype="float32", always_2d=True)
    if total <= 0:
        raise AudioError("no audio samples in file")
    declared = _wav_declared_frames(path) if path.suffix.lower() == ".wav" else None
    if declared is not None and declared > total:
        # libsndfile silently shortens a cut-off WAV to what is there; the header knows better
        raise AudioError(f"truncated file: header declares {declared / sr:.1f} s, only {total / sr:.1f} s present")
    return Decoded(np.ascontiguousarray(data.T), sr, total / sr)


def _wav_declared_frames(path: Path) -> int | None:
    """Frames the RIFF header promises (data chunk size / block align), or None if unreadable."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while chunk := fh.read(8):
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = fh.read(size)
                block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                if size % 2:
                    fh.seek(1, 1)
            elif cid == b"data":
                return size // block_align if block_align and size != 0xFFFFFFFF else None
            else:
                fh.seek(size + size % 2, 1)
    return None


def _decode_av(path: Path, start_s: float, end_s: float | None) -> Decoded:
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # av raises many error types (InvalidDataError, ...)
        raise AudioError(f"not a decodable audio file ({type(e).__name__}: {e})") from None
    try:
        if not container.streams.audio:
            raise AudioError("file has no audio stream")
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate or stream.sample_rate
        if not sr:
            raise AudioError("audio stream has no sample rate")
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = float("nan")
        if start_s > _PREROLL_S:
            try:  # seek early: MDCT codecs (aac, opus, vorbis) need a frame or two of warm-up
                container.seek(int((start_s - _PREROLL_S) * 1_000_000), any_frame=False, backward=True)
            except Exception:
                container.seek(0)
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        first_t: float | None = None
        need_start = int(round(start_s * sr))
        need_stop = None if end_s is None else int(round(end_s * sr))
        got_until = 0
        try:
            for frame in container.decode(stream):
                t0 = float(frame.pts * frame.time_base) if frame.pts is not None else None
                for out in resampler.resample(frame):
                    arr = out.to_ndarray()
                    if first_t is None:
                        first_t = t0 if t0 is not None else 0.0
                        got_until = int(round(first_t * sr))
                    chunks.append(arr)
                    got_until += arr.shape[1]
                if need_stop is not None and got_until >= need_stop:
                    break
        except av.error.FFmpegError as e:
            if not chunks:
                raise AudioError(f"decoding failed ({type(e).__name__}: {e})") from None
            # a truncated tail: keep what decoded, the window check decides if it is enough
    finally:
        container.close()
    if not chunks:
        raise AudioError("no audio frames could be decoded")
    data = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    origin = int(round((first_t or 0.0) * sr))
    lo = max(need_start - origin, 0)
    hi = data.shape[1] if need_stop is None else max(need_stop - origin, lo)
    if not np.isfinite(duration):
        duration = (origin + data.shape[1]) / sr
    return Decoded(np.ascontiguousarray(data[:, lo:hi]), sr, duration)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """[channels, n] -> [n] by averaging channels (stereo vocals are usually centred)."""
    return samples.mean(axis=0) if samples.ndim == 2 else samples


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling with soxr (HQ), float32 out."""
    if sr_in == sr_out:
        return y.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(y, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def load_window(path: Path | str, cfg: AudioConfig, whole: bool = False) -> tuple[np.ndarray, float]:
    """Mono float32 at cfg.sample_rate of the analysed window (or the whole file) + file duration in s."""
    dec = decode(path, 0.0 if whole else cfg.start_s, None if whole else cfg.end_s)
    return resample(to_mono(dec.samples), dec.sample_rate, cfg.sample_rate), dec.duration_s


def rms_db(y: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    if y.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.dot(y, y) / y.size))  # BLAS dot: one pass, no temporary
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


_BASES: dict[tuple, np.ndarray] = {}


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above
SLANEY_HZ_PER_MEL = 200.0 / 3  # Hz per mel in the linear part
SLANEY_MIN_LOG_HZ = 1000.0  # where the logarithmic part starts
SLANEY_MIN_LOG_MEL = SLANEY_MIN_LOG_HZ / SLANEY_HZ_PER_MEL
SLANEY_LOGSTEP = float(np.log(6.4) / 27.0)  # log-Hz per mel above 1 kHz


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    log = SLANEY_MIN_LOG_MEL + np.log(np.maximum(f, SLANEY_MIN_LOG_HZ) / SLANEY_MIN_LOG_HZ) / SLANEY_LOGSTEP
    return np.where(f >= SLANEY_MIN_LOG_HZ, log, f / SLANEY_HZ_PER_MEL)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    log = SLANEY_MIN_LOG_HZ * np.exp(SLANEY_LOGSTEP * (m - SLANEY_MIN_LOG_MEL))
    return np.where(m >= SLANEY_MIN_LOG_MEL, log, SLANEY_HZ_PER_MEL * m)


def mel_centres(cfg: AudioConfig) -> np.ndarray:
    """Centre frequency in Hz of each mel band [n_mels] (the peaks of ``mel_basis``'s triangles)."""
    return _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))[1:-1]


def mel_basis(cfg: AudioConfig) -> np.ndarray:
    """librosa's Slaney mel filterbank [n_mels, 1 + n_fft // 2] (float32, area-normalised triangles),
    cached per settings.

    Computed here in numpy, equal to ``librosa.filters.mel`` (tested): importing librosa costs ~1 s,
    which a one-song ``vocal recommend`` and every prepare worker would pay for one small matrix.
    """
    key = (cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    if key not in _BASES:
        fft_hz = np.linspace(0.0, cfg.sample_rate / 2, 1 + cfg.n_fft // 2)
        edges = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))
        width = np.diff(edges)
        ramps = edges[:, None] - fft_hz[None, :]
        lower = -ramps[:-2] / width[:-1, None]
        upper = ramps[2:] / width[1:, None]
        weights = np.maximum(0.0, np.minimum(lower, upper))
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
        _BASES[key] = weights.astype(np.float32)
    return _BASES[key]


@lru_cache(maxsize=8)
def _window(win_length: int):
    import torch

    return torch.hann_window(win_length, periodic=True)


def mel_power(y: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Mel power spectrogram [n_mels, frames] of mono ``y``; equals librosa.feature.melspectrogram
    (centred frames, zero padding, periodic Hann, power 2, Slaney mel filters)."""
    import torch

    # centred frames = zero padding of n_fft // 2 each side, done by numpy (faster than torch.stft's own)
    x = torch.from_numpy(np.pad(np.asarray(y, dtype=np.float32), cfg.n_fft // 2))
    spec = torch.stft(
        x, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window=_window(cfg.win_length), center=False, return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()
    basis = torch.from_numpy(mel_basis(cfg))
    return (basis @ power).numpy()


def log_mel(y: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Natural-log mel [n_mels, frames], float32: what mels/*.npy store (as float16)."""
    return np.log(mel_power(y, cfg) + cfg.log_floor).astype(np.float32)


def fit_frames(mel: np.ndarray, n_frames: int) -> np.ndarray:
    """Trim or edge-pad a mel to exactly ``n_frames`` (guards one-frame rounding at window edges)."""
    if mel.shape[1] >= n_frames:
        return mel[:, :n_frames]
    return np.pad(mel, ((0, 0), (0, n_frames - mel.shape[1])), mode="edge")


def warm_librosa_cache() -> None:
    """Compile librosa's numba kernels in this process before it starts workers that use librosa.

    librosa caches its numba kernels on disk (``cache=True``), and numba's cache is not safe against
    several processes writing it at once: on a fresh install, the demo's synthesis workers
    (librosa.stft/istft) left an index that pointed at another process's machine code, and
    ``chroma_stft`` in the demo's ``vocal evaluate`` segfaulted. Written once here, the workers only read
    it. Only where workers do use librosa (the demo's synthesis, REPET separation): the others never
    import it, and the import alone costs ~1 s.
    """
    import librosa

    librosa.util.localmax(np.zeros((3, 2), dtype=np.float32))  # imports librosa.util.utils: eager kernels
    y = np.zeros(2048, dtype=np.float32)
    librosa.istft(librosa.stft(y, n_fft=512), n_fft=512, length=y.size)  # the lazy ones workers call
