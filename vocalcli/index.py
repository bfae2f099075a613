"""The song index: Annoy (angular) over the weighted concatenation of timbre and melody embeddings.

Files: ``index/songs.ann`` (memory-mapped at query time) and the sidecar ``index/index.json`` holding
everything needed to use and to trust it: dimension, metric, n_trees, search_k, weights, seed, the row ->
song_id table, and the digests of the embeddings and checkpoints it was built from. A consumer compares
those digests with the files on disk and refuses a stale index, naming the command to re-run.

Vector of song i: ``[w_t * t_i / |t_i|, w_m * m_i / |m_i|]``. Because both parts are unit vectors, the
dot product of two songs is ``w_t^2 cos_t + w_m^2 cos_m``: a query can re-weight the parts at search time
by scaling its own halves (see ``query_vector``) without rebuilding the index.

Annoy's default ``search_k`` (n * n_trees) misses much of the true top-10 on small collections, so
``search_k`` is chosen at build time: doubled until recall@10 against exact search, measured on a sample
of the indexed songs, reaches ``RECALL_TARGET``; the measured value is stored in the sidecar.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import project as project_mod
from vocalcli.config import Config, IndexWeights
from vocalcli.console import ProgressFn
from vocalcli.errors import MissingArtifact, StaleArtifact, VocalError
from vocalcli.tasks import TASKS
from vocalcli.vectors import l2_rows

FORMAT_VERSION = 1
METRIC = "angular"
ANN_NAME = "songs.ann"
SIDECAR_NAME = "index.json"
RECALL_K = 10
RECALL_TARGET = 0.995
"""Measured on a sample; aiming a little above the promised 0.99 leaves room for sampling error."""
RECALL_QUERIES = 300
EMBEDDING_FILES = (*(f"{t.embedding}.npy" for t in TASKS.values()), "ids.csv")


# ----------------------------------------------------------------------------------------- embeddings
def load_embeddings(project: project_mod.Project):
    """``vocalcli.embed.load_embeddings`` (imported lazily: torch loads only when embeddings are needed).

    It refuses missing embeddings and embeddings made by checkpoints other than today's best.pt.
    """
    from vocalcli.embed import load_embeddings as _load

    return _load(project)


def embedding_digests(project: project_mod.Project) -> dict[str, str]:
    """Digests of the embedding files: what an index (or gender model) was made from."""
    return {name: project_mod.file_digest(project.embeddings / name) for name in EMBEDDING_FILES
            if (project.embeddings / name).is_file()}


def checkpoint_digests(project: project_mod.Project) -> dict[str, str]:
    """Digests of the serving checkpoints (vocalcli.tasks.TASKS) that exist now."""
    out = {}
    for task in TASKS:
        p = project.checkpoint(task, "best")
        if p.is_file():
            out[task] = project_mod.file_digest(p)
    return out


# --------------------------------------------------------------------------------------------- vectors
def combine(timbre: np.ndarray, melody: np.ndarray, weights: IndexWeights) -> np.ndarray:
    """Index vectors [N, Dt + Dm] = [w_t * timbre/|timbre|, w_m * melody/|melody|]."""
    return np.concatenate([l2_rows(timbre) * weights.timbre, l2_rows(melody) * weights.melody], axis=-1)


def query_vector(timbre: np.ndarray, melody: np.ndarray, weights: dict[str, float],
                 mix: tuple[float, float]) -> np.ndarray:
    """A query [Dt + Dm] whose dot product with every index vector is ``a cos_t + b cos_m``.

    ``mix`` = (a, b) is what the query wants; ``weights`` are the index's. A part the index gave weight 0
    cannot be searched for; the caller must fall back to exact search then.
    """
    a, b = mix
    wt, wm = weights["timbre"], weights["melody"]
    if (a > 0 and wt == 0) or (b > 0 and wm == 0):
        raise ValueError("index weight 0 for a requested part")
    t = l2_rows(timbre) * (a / wt if wt else 0.0)
    m = l2_rows(melody) * (b / wm if wm else 0.0)
    return np.concatenate([t, m]).astype(np.float32)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k nearest vectors by cosine for each query, best first. [Q, D] -> [Q, k] int."""
    sims = l2_rows(queries) @ l2_rows(vectors).T
    k = min(k, vectors.shape[0])
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def recall_at_k(approx: list[list[int]], exact: np.ndarray | list[list[int]]) -> float:
    """Mean over queries of |approx_q ∩ exact_q| / |exact_q| (pure; ``exact`` rows are the truth)."""
    if len(exact) == 0:
        return float("nan")
    return float(np.mean([len(set(a) & set(e)) / max(len(e), 1) for a, e in zip(approx, exact, strict=True)]))


# ------------------------------------------------------------------------------------------- building
def build_annoy(vectors: np.ndarray, n_trees: int, seed: int):
    """An in-memory AnnoyIndex over ``vectors`` [N, D]; seeded and single-threaded -> identical builds."""
    from annoy import AnnoyIndex

    ann = AnnoyIndex(int(vectors.shape[1]), METRIC)
    ann.set_seed(int(seed))
    for i, v in enumerate(vectors):
        ann.add_item(i, v.tolist())
    ann.build(int(n_trees), n_jobs=1)
    return ann


def measure_recall(ann: Any, vectors: np.ndarray, search_k: int, k: int = RECALL_K,
                   n_queries: int = RECALL_QUERIES, seed: int = 0,
                   queries: np.ndarray | None = None) -> float:
    """recall@k of ``ann`` vs exact search; queries are a seeded sample of the indexed vectors by default."""
    n = vectors.shape[0]
    if queries is None:
        rng = np.random.default_rng(seed)
        pick = rng.choice(n, size=min(n_queries, n), replace=False)
        queries = vectors[np.sort(pick)]
    exact = exact_top_k(vectors, queries, k)
    approx = [ann.get_nns_by_vector(q.tolist(), k, search_k=int(search_k)) for q in queries]
    return recall_at_k(approx, exact)


def choose_search_k(ann: Any, vectors: np.ndarray, n_trees: int, seed: int,
                    target: float = RECALL_TARGET) -> tuple[int, float]:
    """Smallest power-of-two multiple of k * n_trees reaching ``target`` recall@10; -> (search_k, recall).

    Stops at n * n_trees, Annoy's own default for returning all n items, where search is near-exhaustive.
    """
    n = vectors.shape[0]
    k = min(RECALL_K, n)
    cap = max(n * n_trees, k * n_trees)
    search_k = k * n_trees
    while True:
        recall = measure_recall(ann, vectors, search_k, k=k, seed=seed)
        if recall >= target or search_k >= cap:
            return search_k, recall
        search_k = min(search_k * 2, cap)


@dataclass
class IndexInfo:
    """What ``build_index`` made (also the content of the sidecar)."""

    path: Path
    n: int
    dim: int
    n_trees: int
    search_k: int
    recall_at_10: float
    weights: dict[str, float]


def build_index(project: project_mod.Project, cfg: Config, progress: ProgressFn | None = None) -> IndexInfo:
    """Build ``index/songs.ann`` + ``index/index.json`` over every embedded song (written atomically)."""
    emb = load_embeddings(project)
    n = len(emb.ids)
    if n == 0:
        raise VocalError("the embeddings hold no songs; run 'vocal prepare' and 'vocal embed' first")
    w = cfg.index.weights
    vectors = combine(emb.timbre, emb.melody, w)
    n_trees = cfg.index.n_trees
    ann = build_annoy(vectors, n_trees, cfg.seed)
    if progress:
        progress(advance=1)
    if cfg.index.search_k > 0:
        search_k = cfg.index.search_k
        recall = measure_recall(ann, vectors, search_k, k=min(RECALL_K, n), seed=cfg.seed)
    else:
        search_k, recall = choose_search_k(ann, vectors, n_trees, cfg.seed)
    if progress:
        progress(advance=1)
    d = project.index_dir
    with project_mod.atomic_path(d / ANN_NAME) as tmp:
        ann.save(str(tmp))
    ann.unload()
    sidecar = {
        "format_version": FORMAT_VERSION,
        "dim": int(vectors.shape[1]),
        "dims": {"timbre": int(emb.timbre.shape[1]), "melody": int(emb.melody.shape[1])},
        "metric": METRIC,
        "n": n,
        "n_trees": n_trees,
        "search_k": int(search_k),
        "recall_at_10": recall,
        "weights": dataclasses.asdict(w),
        "seed": cfg.seed,
        "ids": list(emb.ids),
        "sources": {
            "embeddings": embedding_digests(project),
            "checkpoints": dict((emb.meta or {}).get("checkpoints") or {}),
            "ann": project_mod.file_digest(d / ANN_NAME),
        },
    }
    project_mod.write_json(d / SIDECAR_NAME, sidecar)
    if progress:
        progress(advance=1)
    return IndexInfo(d / ANN_NAME, n, sidecar["dim"], n_trees, int(search_k), recall, sidecar["weights"])


# -------------------------------------------------------------------------------------------- loading
@dataclass
class SongIndex:
    """A loaded, verified index and the embeddings it was built from (for exact re-scoring)."""

    ann: Any
    info: dict
    ids: list[str]
    row_of: dict[str, int]
    timbre: np.ndarray  # [N, Dt] L2-normalised
    melody: np.ndarray  # [N, Dm] L2-normalised

    @property
    def weights(self) -> dict[str, float]:
        return self.info["weights"]

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, vector: np.ndarray, n: int) -> list[int]:
        """Up to ``n`` rows nearest to ``vector`` [dim]; search_k grows with n as Annoy's default does."""
        search_k = max(int(self.info["search_k"]), n * int(self.info["n_trees"]))
        return self.ann.get_nns_by_vector(np.asarray(vector, dtype=np.float32).tolist(), n, search_k=search_k)


def read_sidecar(project: project_mod.Project) -> dict:
    d = project.index_dir
    if not (d / SIDECAR_NAME).is_file() or not (d / ANN_NAME).is_file():
        raise MissingArtifact(f"no song index in {d}; run 'vocal index'")
    info = project_mod.read_json(d / SIDECAR_NAME, "run 'vocal index'")
    keys = ("dim", "metric", "n", "n_trees", "search_k", "weights", "ids", "sources")
    if not isinstance(info, dict) or any(k not in info for k in keys):
        raise StaleArtifact(f"{d / SIDECAR_NAME} is damaged (keys missing); run 'vocal index'")
    if info.get("format_version") != FORMAT_VERSION:
        raise StaleArtifact(f"{d / SIDECAR_NAME} has format {info.get('format_version')}, this vocal reads "
                            f"{FORMAT_VERSION}; run 'vocal index'")
    return info


def check_fresh(project: project_mod.Project, info: dict, cfg: Config | None = None) -> None:
    """Raise StaleArtifact (naming 'vocal index' or 'vocal embed') if the index's inputs changed."""
    src = info["sources"]
    if embedding_digests(project) != src["embeddings"]:
        raise StaleArtifact("the embeddings changed since the index was built; run 'vocal index'")
    now = checkpoint_digests(project)
    changed = sorted(t for t, h in src.get("checkpoints", {}).items() if t in now and now[t] != h)
    if changed:
        raise StaleArtifact(
            f"the {' and '.join(changed)} model changed since the index was built; run 'vocal embed' and "
            "then 'vocal index'"
        )
    if cfg is not None and dataclasses.asdict(cfg.index.weights) != info["weights"]:
        raise StaleArtifact(
            f"index.weights in vocal.yaml ({dataclasses.asdict(cfg.index.weights)}) differ from the index's "
            f"({info['weights']}); run 'vocal index'"
        )


def load_index(project: project_mod.Project, cfg: Config | None = None) -> SongIndex:
    """Open (memory-map) the index after checking it is fresh; raises MissingArtifact/StaleArtifact."""
    from annoy import AnnoyIndex

    info = read_sidecar(project)
    check_fresh(project, info, cfg)
    emb = load_embeddings(project)
    if list(emb.ids) != info["ids"]:
        raise StaleArtifact("the embedded songs differ from the indexed ones; run 'vocal index'")
    ann_path = project.index_dir / ANN_NAME
    if project_mod.file_digest(ann_path) != info["sources"].get("ann"):
        # Annoy memory-maps what it is given: a truncated file would crash or answer garbage
        raise StaleArtifact(f"{ann_path} does not match {SIDECAR_NAME} (damaged or replaced); run 'vocal index'")
    ann = AnnoyIndex(int(info["dim"]), info["metric"])
    ann.load(str(ann_path))
    if ann.get_n_items() != info["n"]:
        raise StaleArtifact(f"{project.index_dir / ANN_NAME} holds {ann.get_n_items()} songs, the sidecar "
                            f"{info['n']}; run 'vocal index'")
    ids = list(info["ids"])
    return SongIndex(ann, info, ids, {s: i for i, s in enumerate(ids)},
                     l2_rows(emb.timbre), l2_rows(emb.melody))
