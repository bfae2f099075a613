"""MR (accompaniment) removal behind one function: ``separate(y, sr, method)``.

Why several backends: the timbre model must hear the singer, not the band, but the best separator
(Demucs' ``htdemucs``) is an optional extra whose weights need a download this machine may never have.
So ``auto`` uses Demucs when it is importable *and* its weights are already cached, and otherwise the
built-in ``harmonic`` separator, which needs nothing but numpy/scipy/torch and runs at >100x realtime
on one core.

``harmonic`` (predominant-F0 comb mask):

1. Track the melody f0 per frame (vocalcli/f0.py: STFT, harmonic salience weighted by each bin's
   fluctuation, banded Viterbi).
2. Soft comb mask: a Gaussian around each harmonic k*f0 with sigma = 1 bin + 2 % of the frequency
   (harmonic partials of a sung note drift with vibrato and glides more at higher k). iSTFT.

Tried and dropped: a voicing threshold on the salience, spectral whitening before the salience, a
Wiener refinement against a time-smoothed accompaniment estimate, a 2048-point STFT. Speed and SI-SDR
improvement of each backend, and what the dropped ideas measured, are in docs/quality.md
(bench/separation.py measures them).

``repet`` is the librosa "vocal separation" recipe (REPET-SIM: nearest-neighbour median filter over
frames + soft masks), kept for comparison and as an option; it is slow (O(frames^2)) and on sustained
accompaniment it removes as much voice as band.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import f0 as f0_mod
from vocalcli.audio import resample
from vocalcli.config import SEPARATION_METHODS
from vocalcli.errors import VocalError

METHODS = SEPARATION_METHODS
"""Values of ``prepare.separate`` / ``--separate``."""
RUNS_LIBROSA = ("repet",)
"""Methods whose worker processes call librosa: a pool running them warms librosa's numba cache first
(vocalcli.audio.warm_librosa_cache); the others never import librosa."""

DEMUCS_MODEL = "htdemucs"
DEMUCS_SIG = "955717e8"  # the single model of the htdemucs bag (demucs/remote/htdemucs.yaml)
DEMUCS_TORCH_HUB_FILE = "955717e8-8726e21a.th"  # name in <torch hub dir>/checkpoints; sha256 prefix 8726e21a
DEMUCS_HF_REPO = "adefossez/HTDemucs"  # where demucs>=4.1 downloads safetensors weights from

_SIGMA_BINS = 1.0  # mask width at the fundamental, in FFT bins
_SIGMA_REL = 0.02  # extra mask width, as a fraction of the harmonic's frequency


class SeparationError(VocalError):
    """A separation method was unknown or could not run; the message names the fix."""


# --------------------------------------------------------------------------------------------- API


def separate(y: np.ndarray, sr: int, method: str) -> tuple[np.ndarray, str]:
    """Estimate the singing voice of a mono mixture.

    y: mono float [n] at ``sr`` Hz (16000 in practice). method: one of ``METHODS``.
    Returns (vocal estimate, float32 [n], the method actually used: 'demucs', 'harmonic', 'repet' or
    'none'), so callers can record what a prepared song was made with.
    """
    if method not in METHODS:
        raise SeparationError(f"unknown separation method {method!r}; use one of {', '.join(METHODS)}")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise SeparationError(f"separate() needs mono audio [n], got shape {tuple(y.shape)}")
    if method == "auto":
        method = "demucs" if demucs_available()[0] else "harmonic"
    if method == "none" or y.size == 0:
        return y.copy(), method
    if method == "harmonic":
        return harmonic_separate(y, sr), method
    if method == "repet":
        return repet_separate(y, sr), method
    ok, why = demucs_available()
    if not ok:
        raise SeparationError(why)
    return _separate_with_model(y, sr, _load_demucs()), method


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant SDR in dB of ``est`` against ``ref`` (both [n]); the separation metric.

    Computed in float64; a silent reference or estimate gives -inf.
    """
    e = np.asarray(est, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    rr = float(np.dot(r, r))
    if rr == 0.0:
        return float("-inf")
    target = (float(np.dot(e, r)) / rr) * r
    noise = e - target
    num, den = float(np.dot(target, target)), float(np.dot(noise, noise))
    if num == 0.0:
        return float("-inf")
    if den == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(num / den))


# ---------------------------------------------------------------------------------------- harmonic


def _istft(spec: np.ndarray, n_fft: int, hop: int, n: int) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(spec, dtype=np.complex64))
    return torch.istft(x, n_fft, hop, window=torch.hann_window(n_fft), center=True, length=n).numpy()


def harmonic_mask(n_bins: int, f0: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """Soft comb mask [n_bins, frames] in [0, 1] with a Gaussian bump at every harmonic of ``f0``."""
    freqs = (np.arange(n_bins, dtype=np.float32) * (sr / n_fft))[:, None]
    f0 = f0.astype(np.float32)[None, :]
    harm = np.maximum(np.round(freqs / f0), 1.0) * f0  # nearest harmonic to each bin, Hz
    sigma = _SIGMA_BINS * sr / n_fft + _SIGMA_REL * harm
    return np.exp(-0.5 * np.square((freqs - harm) / sigma))


def harmonic_separate(y: np.ndarray, sr: int) -> np.ndarray:
    """Built-in separator: keep the harmonics of the tracked melody f0. y: [n] -> float32 [n]."""
    return harmonic_separate_tracked(y, sr)[0]


def harmonic_separate_tracked(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vocal estimate float32 [n], tracked f0 in Hz [frames], the estimate's energy per frame [frames]):
    the track comes for free here, so prepare's pitch statistics need not track again."""
    n_fft = f0_mod.fft_size(sr)
    hop = n_fft // f0_mod.HOP_FRACTION
    x = np.pad(y, (0, max(0, n_fft - y.size)))  # the centred STFT's reflect padding needs n > n_fft / 2
    spec = f0_mod.stft(x, n_fft, hop)
    mag = np.abs(spec)
    f0 = f0_mod.track_f0(mag, sr, n_fft)
    vocal_spec = spec * harmonic_mask(spec.shape[0], f0, sr, n_fft)
    energy = np.square(np.abs(vocal_spec)).sum(axis=0)
    return _istft(vocal_spec, n_fft, hop, x.size)[: y.size].astype(np.float32, copy=False), f0, energy


# ------------------------------------------------------------------------------------------- repet


def repet_separate(y: np.ndarray, sr: int) -> np.ndarray:
    """librosa's REPET-SIM "vocal separation" example, parameters as published (2 s similarity width,
    margins 2 / 10, power 2, n_fft 2048, hop 512). y: [n] -> float32 [n].
    """
    import librosa

    n_fft, hop = 2048, 512
    spec = librosa.stft(y, n_fft=n_fft, hop_length=hop)
    full, phase = librosa.magphase(spec)
    width = int(librosa.time_to_frames(2, sr=sr, hop_length=hop))
    n_frames = full.shape[1]
    if n_frames <= 2 * width + 1:  # too short for the similarity filter: nothing repeats
        return y.astype(np.float32, copy=True)
    filt = librosa.decompose.nn_filter(full, aggregate=np.median, metric="cosine", width=width)
    filt = np.minimum(full, filt)
    mask_v = librosa.util.softmask(full - filt, 10 * filt, power=2)
    out = librosa.istft(mask_v * full * phase, hop_length=hop, n_fft=n_fft, length=y.size)
    return out.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------ demucs


def _torch_hub_weights() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / DEMUCS_TORCH_HUB_FILE


def _hf_weights() -> Path | None:
    """Cached safetensors weights of htdemucs from the Hugging Face cache, or None (never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(DEMUCS_HF_REPO, f"{DEMUCS_SIG}.safetensors")
    return Path(found) if isinstance(found, str) else None


def _weights_path() -> Path | None:
    """Where the htdemucs weights are on this machine (HF safetensors first: no pickle), or None."""
    hf = _hf_weights()
    if hf is not None and hf.is_file():
        return hf
    th = _torch_hub_weights()
    return th if th.is_file() else None


def demucs_available() -> tuple[bool, str]:
    """(True, "") if demucs imports and htdemucs weights are cached locally, else (False, what to do).

    Looks only at local files: this must be cheap and must never touch the network, because ``auto``
    asks it for every run.
    """
    try:
        import demucs.apply  # noqa: F401
        import demucs.states  # noqa: F401
    except ImportError as e:
        return False, (f"demucs is not installed ({e}); pip install 'vocalcli[demucs]', "
                       "or run with --separate harmonic")
    if _weights_path() is None:
        return False, (f"weights for {DEMUCS_MODEL} are not in the torch hub cache ({_torch_hub_weights()}) "
                       f"nor the Hugging Face cache ({DEMUCS_HF_REPO}); 'vocal prepare --separate demucs' "
                       "fetches them once with demucs' own loader, or run with --separate harmonic")
    return True, ""


def _load_checkpoint(path: Path, sha256_prefix: str | None) -> Any:
    """A demucs model from a cached file: safetensors (class + args in its metadata) or a demucs ``.th``
    package. ``.th`` files are pickles that name the model class, so they cannot be read with
    ``weights_only=True``; we check their sha256 prefix (part of the official file name) first.
    """
    try:
        if path.suffix == ".safetensors":
            from demucs.hf import load_safetensors_model

            model = load_safetensors_model(path)
        else:
            from demucs.states import load_model

            if sha256_prefix:
                digest = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                if not digest.hexdigest().startswith(sha256_prefix):
                    raise SeparationError(f"{path} is corrupt (sha256 does not start with {sha256_prefix}); "
                                          "delete it and download it again, or run with --separate harmonic")
            model = load_model(path)
    except SeparationError:
        raise
    except Exception as e:  # demucs raises many kinds (ModelLoadingError, KeyError, pickle errors)
        raise SeparationError(f"cannot load demucs weights from {path} ({type(e).__name__}: {e}); "
                              "delete the file and download it again, or run with --separate harmonic") from e
    model.eval()
    return model


@lru_cache(maxsize=1)
def _load_demucs() -> Any:
    """The cached htdemucs model (loaded once per process)."""
    path = _weights_path()
    if path is None:
        raise SeparationError(demucs_available()[1])
    prefix = DEMUCS_TORCH_HUB_FILE.split("-")[1].split(".")[0] if path.suffix == ".th" else None
    return _load_checkpoint(path, prefix)


def _separate_with_model(y: np.ndarray, sr: int, model: Any, device: Any = "cpu") -> np.ndarray:
    """Vocals of mono ``y`` [n] at ``sr`` with a demucs model (pretrained, or untrained in tests): the
    one-file path (queries, evaluate's chroma), when only the 16 kHz mono mixture is at hand. `prepare`
    gives demucs the decoded window at the model's own rate and channels instead (`demucs_vocals`).
    Returns float32 [n]."""
    back = demucs_vocals(model, [np.asarray(y, dtype=np.float32)[None]], sr, sr, device)[0]
    if back.size < y.size:
        back = np.pad(back, (0, y.size - back.size))
    return np.ascontiguousarray(back[: y.size], dtype=np.float32)


def to_model_input(samples: np.ndarray, sr: int, model_sr: int, channels: int) -> np.ndarray:
    """A decoded window [channels_in, n] at ``sr`` -> float32 [channels, m] at ``model_sr``: what demucs
    was trained on (44.1 kHz stereo). Mono is duplicated (it is what a centred voice sounds like in both
    channels); more than ``channels`` channels are averaged down to mono first."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    if x.shape[0] != channels:
        x = np.repeat(x.mean(axis=0, keepdims=True), channels, axis=0)
    if sr != model_sr:
        x = np.stack([resample(c, sr, model_sr) for c in x])
    return np.ascontiguousarray(x, dtype=np.float32)


def demucs_vocals(model: Any, windows: list[np.ndarray], sr: int, out_sr: int, device: Any = "cpu"
                  ) -> list[np.ndarray]:
    """The vocal stem of each window, mono float32 [n_i * out_sr / sr], several windows in one batch.

    windows: [channels, n_i] at ``sr`` (made `to_model_input` first when they are not the model's rate
    and channels); windows of equal length go through demucs together. Each is normalised like demucs'
    own CLI (mean and std of its mono mix), separated with demucs' `apply_model` (7.8 s segments,
    overlap 0.25, no shifts) on ``device`` -- the whole batch on the device --, its 'vocals' source
    denormalised, averaged over channels and resampled to ``out_sr``.
    """
    import torch
    from demucs.apply import apply_model

    sources = list(model.sources)
    if "vocals" not in sources:
        raise SeparationError(f"demucs model has no 'vocals' source (has {sources}); use htdemucs")
    if not windows:
        return []
    msr, mch = int(model.samplerate), int(model.audio_channels)
    xs = [to_model_input(w, sr, msr, mch) for w in windows]
    dev = torch.device(device)
    model.to(dev)
    out: list[np.ndarray | None] = [None] * len(xs)
    by_len: dict[int, list[int]] = {}
    for i, x in enumerate(xs):  # only equal lengths share a call: padding would change what demucs hears
        by_len.setdefault(x.shape[1], []).append(i)
    for idx in by_len.values():
        batch = np.stack([xs[i] for i in idx])
        ref = batch.mean(axis=1)  # [B, n] mono mix
        mean = ref.mean(axis=1)[:, None, None]
        std = ref.std(axis=1)[:, None, None]
        std = np.where(std > 0, std, 1.0).astype(np.float32)
        wav = torch.from_numpy((batch - mean) / std).to(dev)
        with torch.no_grad():
            sep = apply_model(model, wav, shifts=0, split=True, overlap=0.25, progress=False, device=dev)
        vocals = (sep[:, sources.index("vocals")].float().cpu().numpy() * std + mean).mean(axis=1)  # [B, n]
        for j, i in enumerate(idx):
            out[i] = resample(vocals[j], msr, out_sr)
    return out  # type: ignore[return-value]


DEMUCS_CPU_X_REALTIME = 1.5
"""htdemucs speed on a CPU (bench/scale.py's prepare step measures it; the issue's 2-core laptop: ~1.5x
realtime): what `auto` uses to say how long demucs would take before choosing it on a CPU."""
DEMUCS_CPU_AUTO_LIMIT_S = 3600.0
"""`auto` on a CPU picks demucs only when the library would take less than this (else harmonic, saying
why and how long demucs would have taken)."""


def demucs_batch(device_type: str) -> int:
    """2-minute windows separated together: a GPU is only kept busy by several songs at once (~0.4 GB of
    activations each on CUDA); a CPU gains nothing from it."""
    return 8 if device_type == "cuda" else 1


def weights_destination() -> str:
    """Where demucs' own loader puts the htdemucs weights: the Hugging Face cache when huggingface_hub
    is installed (demucs >= 4.1), else torch hub's checkpoints folder."""
    try:
        from huggingface_hub import constants

        return str(Path(constants.HF_HUB_CACHE))
    except ImportError:
        return str(_torch_hub_weights().parent)


def fetch_demucs(log: Any = None) -> Path:
    """Download the htdemucs weights with demucs' own loader (what `python -m demucs` does) and return
    where they are. Only called for an explicit ``--separate demucs``; ``auto`` never downloads."""
    try:
        from demucs.pretrained import get_model
    except ImportError as e:
        raise SeparationError(f"demucs is not installed ({e}); pip install 'vocalcli[demucs]', "
                              "or run with --separate harmonic") from e
    if log:
        log(f"downloading the {DEMUCS_MODEL} weights (~80 MB, once) with demucs' own loader into "
            f"{weights_destination()}")
    try:
        get_model(DEMUCS_MODEL)
    except Exception as e:  # network errors come in many types (URLError, HTTPError, OSError, ...)
        raise SeparationError(f"could not download the {DEMUCS_MODEL} weights ({type(e).__name__}: {e}); "
                              f"check the network, or put the file in {weights_destination()}, or run with "
                              "--separate harmonic") from e
    _load_demucs.cache_clear()
    path = _weights_path()
    if path is None:
        raise SeparationError(f"demucs' loader finished but no {DEMUCS_MODEL} weights are in "
                              f"{weights_destination()} nor {_torch_hub_weights().parent}; run with "
                              "--separate harmonic")
    return path


def load_demucs() -> Any:
    """The cached htdemucs model (loaded once per process; on the CPU until `demucs_vocals` moves it)."""
    return _load_demucs()
