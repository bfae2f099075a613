"""Why two songs were matched, in words a listener can check by ear.

A cosine of 0.83 means nothing by itself: what is high depends on the model and the library. So each
similarity is placed among the similarities of song pairs by *different* singers of this library (a
random sample of pairs): "closer than 99 % of pairs" says how unusual the match is, whatever the scale.
Register (the sung f0, from prepare's pitch statistics), gender and genre are added where known,
because they are what a listener hears first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

N_PAIRS = 20000
"""Pairs sampled for the reference distribution (percentiles to +-0.5 %)."""
LEVELS = ((0.99, "very close"), (0.90, "close"), (0.70, "somewhat alike"), (0.0, "no closer than usual"))
"""Percentile among other-singer pairs -> word."""
SAME_REGISTER_SEMITONES = 2.0
_NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_GENDER_WORDS = {"f": "female", "m": "male"}


@dataclass
class PairStats:
    """Sorted cosines of sampled pairs of songs by different singers, per part."""

    timbre: np.ndarray
    melody: np.ndarray

    def percentile(self, part: str, cos: float) -> float | None:
        """Fraction of sampled pairs whose ``part`` cosine is below ``cos`` (None without pairs)."""
        ref = self.timbre if part == "timbre" else self.melody
        if ref.size == 0:
            return None
        return float(np.searchsorted(ref, cos, side="left") / ref.size)


def pair_stats(timbre: np.ndarray, melody: np.ndarray, singers: Sequence[str], seed: int = 0,
               n_pairs: int = N_PAIRS) -> PairStats:
    """Reference cosines from ``n_pairs`` random pairs (i != j, different singers where possible).

    timbre [N, Dt], melody [N, Dm]: L2-normalised rows. With one singer only, any two songs count.
    """
    n = len(singers)
    if n < 2:
        return PairStats(np.zeros(0), np.zeros(0))
    rng = np.random.default_rng(seed)
    s = np.asarray(singers)
    i = rng.integers(0, n, 4 * n_pairs)
    j = rng.integers(0, n, 4 * n_pairs)
    ok = (i != j) & (s[i] != s[j])
    if not ok.any():
        ok = i != j
    i, j = i[ok][:n_pairs], j[ok][:n_pairs]
    ct = np.einsum("nd,nd->n", timbre[i], timbre[j])
    cm = np.einsum("nd,nd->n", melody[i], melody[j])
    return PairStats(np.sort(ct), np.sort(cm))


def level(pct: float | None) -> str:
    """'very close' / 'close' / 'somewhat alike' / 'no closer than usual' for a percentile (None:
    'similarity', when there is no reference)."""
    if pct is None:
        return "similarity"
    return next(word for edge, word in LEVELS if pct >= edge)


def note_name(hz: float | None) -> str | None:
    """Nearest equal-tempered note, e.g. 220 -> 'A3' (None for a missing or non-positive f0)."""
    if hz is None or not math.isfinite(hz) or hz <= 0:
        return None
    midi = round(69 + 12 * math.log2(hz / 440.0))
    return f"{_NOTES[midi % 12]}{midi // 12 - 1}"


def _f0(meta: dict[str, Any]) -> float | None:
    try:
        v = float(meta.get("f0_hz") or "nan")
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _part(name: str, cos: float, pct: float | None) -> str:
    where = ""
    if pct is not None and pct >= 0.7:  # above every sampled pair reads "99.9 %", not a boastful 100 %
        where = f", closer than {pct:.0%}" if pct < 0.99 else f", closer than {min(pct, 0.999):.1%}"
        where += " of pairs by different singers"
    return f"{name} {level(pct)} ({cos:.2f}{where})"


def reason(timbre_cos: float, melody_cos: float, stats: PairStats, mix: tuple[float, float],
           query: dict[str, Any], match: dict[str, Any]) -> str:
    """One line: the parts in the order they weigh in the score, then register, gender and genre.

    ``mix`` = (a, b), the weights of timbre and melody in the score (recommend.mode_mix); a part with
    weight 0 is still described, after the other. ``query`` / ``match``: catalog-like dicts with
    optional 'f0_hz', 'gender' ('f'|'m'), 'genre'.
    """
    parts = [(mix[0], _part("voice", timbre_cos, stats.percentile("timbre", timbre_cos))),
             (mix[1], _part("melody", melody_cos, stats.percentile("melody", melody_cos)))]
    words = [p for _, p in sorted(parts, key=lambda p: -p[0])]
    fq, fm = _f0(query), _f0(match)
    if fq and fm:
        gap = abs(12 * math.log2(fm / fq))
        words.append(f"both sing around {note_name(fm)}" if gap <= SAME_REGISTER_SEMITONES
                     else f"registers differ ({note_name(fq)} vs {note_name(fm)})")
    gq, gm = _GENDER_WORDS.get(query.get("gender") or ""), _GENDER_WORDS.get(match.get("gender") or "")
    if gq and gm:
        words.append(f"both {gq}" if gq == gm else f"{gq} and {gm} voices")
    if query.get("genre") and query.get("genre") == match.get("genre"):
        words.append(f"both {query['genre']}")
    return "; ".join(words)
