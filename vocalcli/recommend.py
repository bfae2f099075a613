"""Songs whose singing voice (and/or melody) is like the query's. Returns results; never prints.

A query is an audio file (prepare pipeline + both encoders), an indexed song (``song_id``), or a singer
(the normalised mean of their songs' embeddings: "more like this singer"). Candidates come from the
Annoy index searched with a query vector re-weighted for the mode (see ``index.query_vector``); they are
then re-scored exactly with the per-part cosines, so the printed similarities are exact:

    score = (a * cos_timbre + b * cos_melody) / (a + b),  (a, b) = (1, 0) voice, (0, 1) melody,
                                                          index weights (w_t^2, w_m^2) for both.

Filters (other singers only, gender, the query song itself) are applied to the candidates; when they
remove too many, the candidate list grows (x4) until k results survive or every song was considered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import catalog as catalog_mod
from vocalcli import project as project_mod
from vocalcli.config import Config
from vocalcli.console import ProgressFn
from vocalcli.errors import StaleArtifact, VocalError
from vocalcli.index import SongIndex, load_index, query_vector
from vocalcli.vectors import l2_rows

MODES = ("voice", "melody", "both")


@dataclass
class Recommendation:
    rank: int
    song_id: str
    singer: str
    title: str
    score: float
    timbre_sim: float
    melody_sim: float
    gender: str | None
    gender_source: str | None  # 'catalog' | 'predicted' | None


@dataclass
class RecommendResult:
    query: dict[str, Any]  # kind ('audio'|'song'|'singer'), what, singer, warnings, separation
    mode: str
    k: int
    filters: dict[str, Any]
    items: list[Recommendation]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mode_mix(mode: str, weights: dict[str, float]) -> tuple[float, float]:
    """(a, b): how much timbre and melody cosine count in the score for ``mode``."""
    if mode == "voice":
        return 1.0, 0.0
    if mode == "melody":
        return 0.0, 1.0
    if mode == "both":
        a, b = weights["timbre"] ** 2, weights["melody"] ** 2
        s = a + b
        return a / s, b / s
    raise VocalError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")


def rank_rows(index: SongIndex, q_t: np.ndarray, q_m: np.ndarray, mix: tuple[float, float],
              keep: Any, k: int) -> list[tuple[int, float, float, float]]:
    """Top-k rows (row, score, cos_t, cos_m) passing ``keep(row)``, via Annoy candidates + exact rescoring."""
    n_total = len(index)
    q_t = l2_rows(q_t)
    q_m = l2_rows(q_m)
    try:
        vec = query_vector(q_t, q_m, index.weights, mix)
    except ValueError:  # the index gave this part weight 0: only exact search can rank it
        vec = None
    n = min(n_total, 2 * k + 10)
    while True:
        if vec is None or n >= n_total:
            rows = list(range(n_total))
        else:
            rows = index.search(vec, n)
        rows = [r for r in rows if keep(r)]
        if len(rows) >= k or n >= n_total or vec is None:
            break
        n = min(n_total, n * 4)
    if not rows:
        return []
    r = np.asarray(rows)
    ct = index.timbre[r] @ q_t
    cm = index.melody[r] @ q_m
    a, b = mix
    score = (a * ct + b * cm) / (a + b)
    order = sorted(range(len(r)), key=lambda i: (-score[i], index.ids[r[i]]))[:k]
    return [(int(r[i]), float(score[i]), float(ct[i]), float(cm[i])) for i in order]


def embed_file(project: project_mod.Project, cfg: Config, path: Path, index: SongIndex,
               separate: str | None = None, device: str = "auto") -> tuple[np.ndarray, np.ndarray, dict]:
    """An audio file -> (timbre, melody, prepare info), refusing models other than the index's."""
    from vocalcli.embed import Embedder
    from vocalcli.prepare import prepare_query

    embedder = Embedder.from_project(project, device=device)
    made_with = index.info["sources"].get("checkpoints", {})
    changed = sorted(t for t, h in embedder.checkpoint_hashes.items() if t in made_with and made_with[t] != h)
    if changed:
        raise StaleArtifact(f"the {' and '.join(changed)} model changed since the index was built; run "
                            "'vocal embed' and then 'vocal index'")
    mel, info, track = prepare_query(path, cfg, separate)
    t, m = embedder.embed(mel, track)
    return np.asarray(t), np.asarray(m), info


def catalog_song_of(project: project_mod.Project, catalog: dict[str, dict[str, str]], path: Path) -> str | None:
    """The id of the catalog song that ``path`` is (the same file under the project's songs directory, with
    the size and mtime prepare recorded), else None.

    Why: such a query would come back as its own best match (similarity 1.0), and re-embedding it only
    repeats what the index already holds; its singer is also known then, so --exclude-singer can work.
    A copy elsewhere, or the file changed since prepare, is embedded as any other file.
    """
    from vocalcli.playlist import songs_dir
    from vocalcli.prepare import same_file

    base = songs_dir(project)
    if base is None:
        return None
    try:
        target = Path(path).resolve()
        rel = target.relative_to(base.resolve()).as_posix()
        st = target.stat()
    except (OSError, ValueError):
        return None
    for sid, r in catalog.items():
        if r.get("source") == rel and same_file(r, st):
            return sid
    return None


def resolve_song(ref: str, ids: list[str], catalog: dict[str, dict[str, str]]) -> str:
    """The indexed song id that ``ref`` names: the id itself, ``SINGER/TITLE``, or a title that only one
    indexed song has. Why: ids carry a hash (``alice_song-3_b4f2d305``) nobody types; titles are what
    people know. A miss names the closest ids and titles, so the fix is one copy away."""
    if ref in ids:
        return ref
    by_pair: dict[str, list[str]] = {}
    by_title: dict[str, list[str]] = {}
    for sid in ids:
        r = catalog.get(sid, {})
        title = r.get("title", "")
        by_pair.setdefault(f"{r.get('singer', '')}/{title}", []).append(sid)
        by_title.setdefault(title, []).append(sid)
    hit = by_pair.get(ref) or by_title.get(ref) or []
    if len(hit) == 1:
        return hit[0]
    if len(hit) > 1:
        names = ", ".join(sorted(f"{catalog[s].get('singer', '')}/{catalog[s].get('title', '')}" for s in hit))
        raise VocalError(f"{len(hit)} indexed songs are titled {ref!r} ({names}); give SINGER/TITLE or the song id")
    import difflib

    close = difflib.get_close_matches(ref, sorted(set(ids) | set(by_pair)), n=3, cutoff=0.5)
    why = catalog.get(ref, {}).get("status")
    hint = (f"it is in the catalog with status '{why}'" if why and why != "ok"
            else "give a song id, SINGER/TITLE or a title; run 'vocal embed' and 'vocal index' after adding songs")
    maybe = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise VocalError(f"song {ref!r} is not in the index ({hint}){maybe}")


def recommend(
    project: project_mod.Project,
    cfg: Config,
    *,
    audio: Path | None = None,
    song_id: str | None = None,
    singer: str | None = None,
    k: int = 10,
    mode: str = "both",
    exclude_singer: bool | None = None,
    gender: str | None = None,
    separate: str | None = None,
    device: str = "auto",
    progress: ProgressFn | None = None,
) -> RecommendResult:
    """The k best songs for exactly one of ``audio`` / ``song_id`` / ``singer``.

    ``exclude_singer`` None = True for catalog queries (song, singer), False for files (no singer known).
    A file that is an indexed catalog song (`catalog_song_of`) uses its indexed vectors, is left out of
    the results and has its singer known; ``query['song_id']`` then names it.
    ``gender`` 'f'|'m' keeps songs whose catalog label, or else the classifier's prediction, matches.
    """
    from vocalcli import gender as gender_mod

    if sum(x is not None for x in (audio, song_id, singer)) != 1:
        raise VocalError("give exactly one query: an audio file, --song-id ID or --singer NAME")
    if k < 1:
        raise VocalError("-k must be at least 1")
    if gender is not None and catalog_mod.normalise_gender(gender) is None:
        raise VocalError(f"--gender must be f or m, got {gender!r}")
    gender = catalog_mod.normalise_gender(gender) if gender else None
    index = load_index(project, cfg)
    mix = mode_mix(mode, index.weights)
    catalog = catalog_mod.by_id(project)
    warnings: list[str] = []
    exclude_rows: set[int] = set()
    query_singer: str | None = None
    query: dict[str, Any] = {}
    # a catalog song's own file, unless another MR removal was asked for than the one its vectors had
    same = catalog_song_of(project, catalog, Path(audio)) if audio is not None and separate is None else None
    if same is not None and same in index.row_of:
        row = index.row_of[same]
        q_t, q_m = index.timbre[row], index.melody[row]
        exclude_rows.add(row)
        query_singer = catalog[same].get("singer") or None
        query = {"kind": "audio", "what": str(audio), "song_id": same, "singer": query_singer,
                 "title": catalog[same].get("title"), "separation": catalog[same].get("separation")}
    elif audio is not None:
        q_t, q_m, info = embed_file(project, cfg, Path(audio), index, separate, device)
        warnings += info.get("warnings", [])
        query = {"kind": "audio", "what": str(audio), "separation": info.get("separation")}
    elif song_id is not None:
        song_id = resolve_song(song_id, list(index.ids), catalog)
        row = index.row_of[song_id]
        q_t, q_m = index.timbre[row], index.melody[row]
        exclude_rows.add(row)
        query_singer = catalog.get(song_id, {}).get("singer")
        query = {"kind": "song", "what": song_id, "singer": query_singer,
                 "title": catalog.get(song_id, {}).get("title")}
    else:
        rows = [index.row_of[s] for s, r in catalog.items() if r.get("singer") == singer and s in index.row_of]
        if not rows:
            known = sorted({r["singer"] for s, r in catalog.items() if s in index.row_of})
            raise VocalError(f"no indexed songs by singer {singer!r}; known singers: "
                             f"{', '.join(known[:10])}{' ...' if len(known) > 10 else ''}")
        q_t = l2_rows(index.timbre[rows].mean(axis=0))
        q_m = l2_rows(index.melody[rows].mean(axis=0))
        query_singer = singer
        query = {"kind": "singer", "what": singer, "singer": singer, "n_songs": len(rows)}
    if progress:
        progress(advance=1)

    if exclude_singer is None:  # a file keeps its singer's songs, even when it is a catalog song's file
        exclude_singer = query_singer is not None and query["kind"] != "audio"
    if exclude_singer and query_singer is None:
        warnings.append("--exclude-singer ignored: the singer of a query file is unknown")
        exclude_singer = False
    singer_of = [catalog.get(s, {}).get("singer", "") for s in index.ids]
    if exclude_singer:
        exclude_rows |= {i for i, s in enumerate(singer_of) if s == query_singer}

    genders: dict[str, tuple[str, str]] = {}
    if gender is not None:
        genders = gender_mod.song_genders(project, index.ids)
        unknown = sum(1 for s in index.ids if s not in genders)
        if unknown:
            warnings.append(f"{unknown} songs have no gender label or prediction and were left out; run "
                            "'vocal classify-gender train' to predict them")

    def keep(r: int) -> bool:
        if r in exclude_rows:
            return False
        return gender is None or genders.get(index.ids[r], (None,))[0] == gender

    ranked = rank_rows(index, q_t, q_m, mix, keep, k)
    if gender is None and ranked:
        genders = gender_mod.song_genders(project, [index.ids[r] for r, *_ in ranked])
    items = []
    for rank, (r, score, ct, cm) in enumerate(ranked, start=1):
        sid = index.ids[r]
        meta = catalog.get(sid, {})
        g, src = genders.get(sid, (None, None))
        items.append(Recommendation(rank, sid, meta.get("singer", ""), meta.get("title", ""), score, ct, cm,
                                    g, src))
    if len(items) < k:
        warnings.append(f"only {len(items)} songs match the filters (asked for {k})")
    if progress:
        progress(advance=1)
    filters = {"exclude_singer": bool(exclude_singer), "gender": gender}
    return RecommendResult(query, mode, k, filters, items, warnings)
