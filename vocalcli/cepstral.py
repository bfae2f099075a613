"""The cepstral correlation signature: a second-order statistic of a song's voice that MR residue barely
touches, and how it joins the contrastive embedding into the song's timbre vector.

Why: on mixtures, what `harmonic` MR removal leaves of the band is a fairly *stationary* colouring of the
log-mel (the same organ or strings all song long). It shifts and scales each cepstral coefficient, so it
dominates means and variances (MFCC mean+std, and the contrastive embedding, learn to match songs by
their accompaniment instrument). How the coefficients move *together* over the song (Pearson
correlation: invariant to each coefficient's offset and scale) follows the voice's formant movements.
What this buys on the corpora is in docs/quality.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vocalcli.config import TimbreConfig
from vocalcli.vectors import l2_rows


def signature(log_mel: np.ndarray, n_cepstra: int = 13, loud_fraction: float = 1.0,
              smooth_frames: int = 1) -> np.ndarray:
    """[n_cepstra * (n_cepstra - 1) / 2] float32, L2-normalised: the upper triangle of the correlation
    matrix of cepstral coefficients 0..n_cepstra-1 (DCT of the natural-log mel) over the song's frames.

    ``smooth_frames`` > 1 first averages the coefficients over that many frames: the correlations then
    follow syllable-rate formant movement, not frame-to-frame leakage of the band. ``loud_fraction`` < 1
    keeps only the loudest (smoothed) frames of the vocal estimate: where the voice rests, the estimate
    is mostly what MR removal left of the band. Both measured on band mixes in docs/quality.md.
    A coefficient that never changes (a silent or constant mel) correlates 0 with everything.
    """
    mel = np.asarray(log_mel, dtype=np.float64)
    if mel.ndim != 2 or n_cepstra < 2 or n_cepstra > mel.shape[0]:
        raise ValueError(f"need a log-mel [n_mels >= {n_cepstra}, frames], got {mel.shape}")
    from scipy.fft import dct

    c = dct(mel, type=2, norm="ortho", axis=0)[:n_cepstra]
    smooth = max(1, min(int(smooth_frames), mel.shape[1]))
    from scipy.ndimage import uniform_filter1d

    if smooth > 1:
        c = uniform_filter1d(c, smooth, axis=1, mode="nearest")
    if loud_fraction < 1.0:
        loud = np.logaddexp.reduce(mel, axis=0)  # the frame's log energy, smoothed like the cepstra
        if smooth > 1:
            loud = uniform_filter1d(loud, smooth, mode="nearest")
        c = c[:, loud >= np.quantile(loud, 1.0 - max(loud_fraction, 1.0 / loud.size))]
    c -= c.mean(axis=1, keepdims=True)
    sd = np.sqrt(np.mean(c * c, axis=1))
    c /= np.where(sd > 1e-9, sd, np.inf)[:, None]
    corr = (c @ c.T) / max(c.shape[1], 1)
    return l2_rows(corr[np.triu_indices(n_cepstra, 1)], np.float64).astype(np.float32)


def song_signature(log_mel: np.ndarray, cfg: TimbreConfig) -> np.ndarray:
    """The signature as the song's timbre vector uses it (vocal.yaml ``timbre``)."""
    return signature(log_mel, cfg.cepstra, cfg.loud_fraction, cfg.smooth_frames)


def dim(cfg: TimbreConfig) -> int:
    return cfg.cepstra * (cfg.cepstra - 1) // 2


def neighbour_groups(signatures: np.ndarray) -> np.ndarray:
    """[N] group index per row of [N, D] signatures: two songs share a group when each is the other's
    most similar (cosine) song; every other song is a group of its own. A label-free guess at "same
    voice" that is rarely wrong (mutual nearest neighbours; precision and coverage in docs/quality.md),
    and two songs of a pair share no band."""
    n = len(signatures)
    groups = np.arange(n, dtype=np.int64)
    if n < 2:
        return groups
    x = l2_rows(signatures, np.float64)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nn = sim.argmax(axis=1)
    for i, j in enumerate(nn):
        if nn[j] == i and i < j:
            groups[j] = groups[i]
    return np.unique(groups, return_inverse=True)[1].astype(np.int64)


@dataclass(frozen=True)
class Whitening:
    """Within-singer normalisation of signatures (within-class covariance normalisation, as speaker
    verification applies to i-vectors): x -> (x - mean) @ transform, then L2-normalised."""

    mean: np.ndarray  # [D] float64: the signatures' mean
    transform: np.ndarray  # [D, D] float64: inverse square root of the shrunk within-singer covariance
    singers: int  # singers with >= 2 songs whose spread it was learned from
    songs: int  # their songs

    def apply(self, sig: np.ndarray) -> np.ndarray:
        """[N, D] or [D] signatures -> the same, normalised and L2-normalised, float32."""
        return l2_rows((l2_rows(sig, np.float64) - self.mean) @ self.transform).astype(np.float32)


def within_singer(signatures: np.ndarray, singers: Sequence[str], shrink: float = 0.1) -> Whitening | None:
    """The normalisation learned from [N, D] signatures and each row's singer ("" = unknown); None when fewer
    than 2 singers have 2 songs (nothing to learn from).

    Why: two songs of one singer differ in what MR removal left of their bands and in what they sing, and
    those differences move the signature along much the same directions whoever sings (band leftovers
    and register are not the voice). Scaling each direction by the inverse of its spread *within* singers
    turns them down and the voice's directions up. Learned from the catalog's singer folders at embed time;
    on voices it never saw, band-mix singer-ID at 5 songs per singer goes from 0.77 to 0.96
    (docs/quality.md). ``shrink`` pulls the covariance towards its mean variance, since a few dozen songs
    do not pin down D * (D + 1) / 2 entries.
    """
    x = l2_rows(signatures, np.float64)
    lab = np.asarray(list(singers), dtype=object)
    if len(lab) != len(x):
        raise ValueError(f"{len(x)} signatures but {len(lab)} singers")
    keep = [s for s, n in Counter(lab.tolist()).items() if s and n >= 2]
    if len(keep) < 2:
        return None
    d = x.shape[1]
    scatter = np.zeros((d, d))
    n = 0
    for s in keep:
        z = x[lab == s]
        z = z - z.mean(axis=0)
        scatter += z.T @ z
        n += len(z)
    scatter /= n
    level = np.trace(scatter) / d
    if level <= 1e-12:  # every singer's songs identical: nothing to weigh
        return None
    cov = (1.0 - shrink) * scatter + shrink * level * np.eye(d)
    e, v = np.linalg.eigh(cov)
    transform = (v * np.maximum(e, 1e-12 * level) ** -0.5) @ v.T
    return Whitening(x.mean(axis=0), transform, len(keep), n)


def fuse(encoder_vec: np.ndarray, sig: np.ndarray, cfg: TimbreConfig) -> np.ndarray:
    """The song's timbre vector: L2-normalised [encoder_weight * embedding, cepstral_weight * signature]
    (each part L2-normalised first), float32. Rows of [N, D] arrays are fused independently."""
    v = np.concatenate([l2_rows(encoder_vec) * cfg.encoder_weight, l2_rows(sig) * cfg.cepstral_weight], axis=-1)
    return l2_rows(v)


def settings(cfg: TimbreConfig) -> dict[str, float | int]:
    """What embeddings/meta.json records, so embeddings made with other settings are refused."""
    return {"encoder_weight": float(cfg.encoder_weight), "cepstral_weight": float(cfg.cepstral_weight),
            "cepstra": int(cfg.cepstra), "loud_fraction": float(cfg.loud_fraction),
            "smooth_frames": int(cfg.smooth_frames), "within_singer": bool(cfg.within_singer),
            "within_singer_shrink": float(cfg.within_singer_shrink)}
