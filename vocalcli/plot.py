"""The research team's figure: a 2-D map of song embeddings for a few singers, as a PNG.

t-SNE (scikit-learn, seeded, cosine metric, PCA initialisation) by default; PCA for a linear view or
when there are too few songs for t-SNE's perplexity. The image is exactly ``width`` x ``height`` pixels
(no tight bounding box, which would change the size).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocalcli import project as project_mod
from vocalcli.config import PROJECTIONS, Config
from vocalcli.errors import VocalError

COLORS = ("singer", "gender", "genre")
EMBEDDINGS = ("timbre", "melody")
METHODS = PROJECTIONS
DEFAULT_SINGERS = 4
DPI = 100


@dataclass
class PlotResult:
    path: Path
    singers: list[str]
    n_songs: int
    method: str
    width: int
    height: int


def project_2d(x: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, str]:
    """[N, D] -> ([N, 2], method used). t-SNE needs > 5 points; fewer fall back to PCA."""
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return np.zeros((len(x), 2)), "pca"
    if method == "tsne" and len(x) > 5:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, (len(x) - 1) / 3))
        tsne = TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
        return tsne.fit_transform(x), "tsne"
    k = min(2, x.shape[1], len(x))
    y = PCA(n_components=k, random_state=seed).fit_transform(x)
    return (np.pad(y, ((0, 0), (0, 2 - k))) if k < 2 else y), "pca"


def plot_map(project: project_mod.Project, cfg: Config, out: Path, singers: Sequence[str] | None = None,
             color: str = "singer", embedding: str = "timbre", method: str = "tsne",
             width: int = 1000, height: int = 800) -> PlotResult:
    """Write the map of the chosen singers' songs (default: the DEFAULT_SINGERS with the most songs)."""
    from vocalcli import catalog
    from vocalcli.index import load_embeddings
    from vocalcli.vectors import l2_rows

    if color not in COLORS:
        raise VocalError(f"--color must be one of {', '.join(COLORS)}, got {color!r}")
    if embedding not in EMBEDDINGS:
        raise VocalError(f"--embedding must be one of {', '.join(EMBEDDINGS)}, got {embedding!r}")
    if method not in METHODS:
        raise VocalError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if width < 100 or height < 100:
        raise VocalError("--width and --height must be at least 100 pixels")
    emb = load_embeddings(project)
    row_of = {s: i for i, s in enumerate(emb.ids)}
    rows = [r for r in catalog.ok_rows(project) if r["song_id"] in row_of]
    counts = Counter(r["singer"] for r in rows)
    if singers:
        unknown = [s for s in singers if s not in counts]
        if unknown:
            raise VocalError(f"no embedded songs for singer(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(counts)[:12])}")
        chosen = list(singers)
    else:
        chosen = [s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:DEFAULT_SINGERS]]
    if not chosen:
        raise VocalError("no embedded songs to plot; run 'vocal embed'")
    rows = [r for r in rows if r["singer"] in set(chosen)]
    x = l2_rows((emb.timbre if embedding == "timbre" else emb.melody)[[row_of[r["song_id"]] for r in rows]])
    xy, used = project_2d(x, method, cfg.seed)

    if color == "singer":
        groups = [r["singer"] for r in rows]
    elif color == "gender":
        groups = [catalog.gender_word(r.get("gender")) or "unlabelled" for r in rows]
    else:
        groups = [r.get("genre") or "unknown" for r in rows]
    _draw(xy, groups, out, width, height,
          f"{embedding} embeddings of {len(chosen)} singers ({len(rows)} songs, {used.upper()}), "
          f"coloured by {color}")
    return PlotResult(Path(out), chosen, len(rows), used, width, height)


def _draw(xy: np.ndarray, groups: Sequence[str], out: Path, width: int, height: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width / DPI, height / DPI), dpi=DPI)
    try:
        names = sorted(set(groups))
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for i, name in enumerate(names):
            sel = np.array([g == name for g in groups])
            ax.scatter(xy[sel, 0], xy[sel, 1], s=36, color=cmap(i % cmap.N), label=name, alpha=0.85,
                       edgecolors="white", linewidths=0.5)
        ax.set_title(title, fontsize=11)
        ax.set_axis_off()
        ax.legend(loc="best", frameon=True, fontsize=9, markerscale=1.2)
        fig.tight_layout()
        with project_mod.atomic_path(Path(out)) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
