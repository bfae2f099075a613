"""`vocal report`: the project as a static site you open from disk and listen to.

Why static files and no server: a report must open from ``file://`` on any machine, be copied or zipped
with the project, and need no network (no CDN): every script and style is written beside the page.

Layout of ``DIR`` (default ``<project>/report``)::

    index.html              the page: summary, map, the selected song, library, quality
    assets/app.js, style.css
    data/site.js            what every view needs: songs (id, title, singer, gender, map position),
                            singers, files not prepared, the evaluate report, training curves
    data/songs-NNN.js       per-song detail in chunks of report.songs_per_chunk songs (clips,
                            recommendations with reasons), loaded when a song is selected
    clips/ID.mix.opus       the analysed stretch of the original (vocalcli.clips)
    clips/ID.voice.opus     the same seconds of the vocal estimate after MR removal
    playlists/ID.m3u8       the song and its recommendations, for any music player

Data files are JavaScript (``VOCAL.site({...})``, ``VOCAL.chunk(n, {...})``) rather than JSON because a
page opened from ``file://`` may not ``fetch()`` its neighbours, but may load ``<script>`` tags: that is
how 4,500 songs load lazily, one chunk at a time, without a server.

Everything degrades: without embeddings there is no map, without an index no recommendations, without
the songs folder no clips; each missing piece becomes a note (on the page and in the result) that names
the command to run.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from vocalcli import catalog as catalog_mod
from vocalcli import clips as clips_mod
from vocalcli import playlist
from vocalcli import project as project_mod
from vocalcli.config import Config
from vocalcli.errors import MissingArtifact, StaleArtifact, VocalError

ASSETS = ("index.html", "app.js", "style.css")
"""Files of vocalcli/report_assets/: index.html goes to the top, the others to assets/."""
MAX_CURVE_POINTS = 400
"""Training curves are averaged into at most this many points per series (the page stays small)."""
TRAINING_RUNS = ("contrastive", "tcae")
"""runs/<task>/ folders whose metrics.jsonl become curves."""


@dataclass
class ReportResult:
    path: Path  # index.html
    out_dir: Path
    singers: int
    songs: int  # prepared (ok)
    not_prepared: int
    mapped: int
    with_recommendations: int
    clips_written: int
    clips_reused: int
    clips_failed: dict[str, str]
    bytes: int  # the whole site
    seconds: float
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ pieces
def latest_evaluation(project: project_mod.Project) -> dict[str, Any] | None:
    """The newest runs/evaluate/*/report.json (by folder name, a timestamp), or None."""
    reports = sorted((project.runs / "evaluate").glob("*/report.json"))
    for path in reversed(reports):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # an unreadable report: try the one before
    return None


def evaluation_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The evaluate report as table rows: metric, vocal, baseline, what the baseline is, who wins."""
    from vocalcli.evaluate import METRICS

    rows = []
    for m in METRICS:
        ours = report.get(m.key)
        ref = report.get(m.baseline) if m.baseline else 1.0
        better = None
        if ours is not None and ref is not None:
            better = ours >= ref if m.higher_is_better else ours <= ref
        rows.append({"metric": m.key, "vocal": ours, "baseline": ref, "baseline_is": m.baseline_label,
                     "lower_is_better": not m.higher_is_better, "vocal_at_least_baseline": better})
    return rows


def _run_chain(task_dir: Path) -> list[Path]:
    """The newest run of a task and the runs it resumed, oldest first (a resumed run continues the
    previous run's step count, so together they are one curve)."""
    runs = sorted(p for p in task_dir.iterdir() if (p / "metrics.jsonl").is_file()) if task_dir.is_dir() else []
    chain: list[Path] = []
    for run in reversed(runs):
        chain.append(run)
        try:
            resumed = json.loads((run / "config.json").read_text(encoding="utf-8")).get("resumed_from_epoch")
        except (OSError, ValueError):
            resumed = None
        if not resumed:
            break
    return chain[::-1]


def _bin_mean(x: list[float], y: list[float], n: int) -> tuple[list[float], list[float]]:
    """Average consecutive points into at most ``n`` (NaN/None values ignored)."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray([np.nan if v is None else v for v in y], np.float64)
    ok = np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if len(xs) <= n:
        return xs.tolist(), ys.tolist()
    edges = np.linspace(0, len(xs), n + 1).astype(int)
    return ([float(xs[a:b].mean()) for a, b in zip(edges[:-1], edges[1:], strict=True)],
            [float(ys[a:b].mean()) for a, b in zip(edges[:-1], edges[1:], strict=True)])


CURVES = {
    "contrastive": {"steps": [("loss", "InfoNCE loss"), ("ln_n", "chance level ln N")],
                    "epochs": [("val_singer_acc", "val singer-ID accuracy (1-NN)")]},
    "tcae": {"steps": [("loss", "total loss"), ("recon", "reconstruction"), ("ssm", "self-similarity")],
             "epochs": [("val_loss", "val loss")]},
}
"""Per task: which metrics.jsonl fields become curves, against step (step rows) or epoch (epoch rows)."""


def training_curves(project: project_mod.Project) -> list[dict[str, Any]]:
    """Per trained task: step and epoch series from its latest run chain (runs/<task>/*/metrics.jsonl)."""
    out = []
    for task in TRAINING_RUNS:
        chain = _run_chain(project.runs / task)
        if not chain:
            continue
        steps: list[dict[str, Any]] = []
        epochs: list[dict[str, Any]] = []
        for run in chain:
            for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut off by an interrupted run
                (steps if row.get("type") == "step" else epochs).append(row)
        spec = CURVES.get(task, {"steps": [("loss", "loss")], "epochs": []})
        series = []
        for kind, rows, xkey in (("steps", steps, "step"), ("epochs", epochs, "epoch")):
            for key, label in spec[kind]:
                pts = [(r[xkey], r.get(key)) for r in rows if key in r and xkey in r]
                if not pts:
                    continue
                x, y = _bin_mean([p[0] for p in pts], [p[1] for p in pts], MAX_CURVE_POINTS)
                series.append({"key": key, "label": label, "x": xkey, "xs": x, "ys": y})
        if series:
            out.append({"task": task, "runs": [r.name for r in chain], "steps": len(steps),
                        "epochs": len(epochs), "series": series})
    return out


def _map_xy(out_dir: Path, ids: list[str], timbre: np.ndarray, method: str, seed: int,
            digest: str) -> tuple[np.ndarray, str]:
    """plot.project_2d of the timbre vectors, cached in data/map.json by embeddings digest + method."""
    from vocalcli.plot import project_2d

    cache = out_dir / "data" / "map.json"
    key = {"digest": digest, "method": method, "seed": seed, "n": len(ids)}
    if cache.is_file():
        try:
            c = json.loads(cache.read_text(encoding="utf-8"))
            if c.get("key") == key and c.get("ids") == ids:
                return np.asarray(c["xy"], dtype=np.float64), c["used"]
        except (OSError, ValueError, KeyError):
            pass
    xy, used = project_2d(timbre, method, seed)
    project_mod.write_text(cache, json.dumps({"key": key, "ids": ids, "xy": np.round(xy, 4).tolist(),
                                              "used": used}))
    return xy, used


def _unit_square(xy: np.ndarray) -> np.ndarray:
    """Each axis scaled into [0, 1] on its own, as matplotlib does in `vocal plot`: the map fills its box
    (t-SNE axes carry no units; the page pads and flips y). A flat axis sits at 0.5."""
    if len(xy) == 0:
        return xy
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = hi - lo
    return np.where(span > 1e-12, (xy - lo) / np.where(span > 1e-12, span, 1.0), 0.5)


def recommendations(index: Any, singers: list[str], k: int, progress: Callable[..., None] | None = None
                    ) -> dict[str, list[tuple[int, float, float, float]]]:
    """song_id -> top-k (row, score, cos_timbre, cos_melody) among *other singers'* songs, mode 'both'.

    The same ranking as ``vocal recommend --song-id ID`` (recommend.rank_rows, index weights), for every
    indexed song, with the index loaded once.
    """
    from vocalcli.recommend import mode_mix, rank_rows

    mix = mode_mix("both", index.weights)
    out = {}
    for row, sid in enumerate(index.ids):
        mine = singers[row]
        out[sid] = rank_rows(index, index.timbre[row], index.melody[row], mix,
                             lambda r, mine=mine: singers[r] != mine, k)
        if progress:
            progress(advance=1)
    return out


def _js(call: str, *args: Any) -> str:
    """A data file: ``VOCAL.call(arg, ...);`` (JSON is valid JavaScript; ASCII-escaped, so U+2028 is safe)."""
    return f"VOCAL.{call}({', '.join(json.dumps(a, separators=(',', ':'), allow_nan=False) for a in args)});\n"


def _clean(obj: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, recursively (JSON without NaN)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _float(text: Any) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _dir_size(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def _copy_assets(out_dir: Path) -> None:
    src = resources.files("vocalcli") / "report_assets"
    for name in ASSETS:
        data = (src / name).read_bytes()
        project_mod.write_bytes(out_dir / (name if name == "index.html" else f"assets/{name}"), data)


def _remove_stale(folder: Path, pattern: str, keep: set[str]) -> None:
    for f in folder.glob(pattern):
        if f.name not in keep:
            f.unlink()


# -------------------------------------------------------------------------------------------- report
def write_report(project: project_mod.Project, cfg: Config, out_dir: Path | None = None, *,
                 workers: int | None = None, force: bool = False,
                 progress: Callable[..., None] | None = None) -> ReportResult:
    """Write the site into ``out_dir`` (default ``<project>/report``); returns what it holds.

    ``progress(advance=..., total=..., description=...)`` follows the stages (map, recommendations,
    clips). Clips already written for unchanged songs are reused unless ``force``.
    """
    from vocalcli import gender as gender_mod
    from vocalcli import reasons

    t0 = time.perf_counter()
    tick = progress or (lambda **_: None)
    catalog = catalog_mod.read(project)
    out_dir = Path(out_dir) if out_dir is not None else project.root / "report"
    ours = (out_dir / "data" / "site.js").is_file()
    others = out_dir.is_dir() and any(not f.name.startswith(".") for f in out_dir.iterdir())  # .lock, temps
    if out_dir.resolve() == project.root.resolve() or (others and not ours):
        raise VocalError(f"{out_dir} holds other files; the report needs an empty folder or an earlier report "
                         "(it removes the files it no longer needs there): pass -o NEW_DIR")
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    ok_rows = [r for r in catalog if r.get("status") == "ok"]
    failed_rows = [r for r in catalog if r.get("status") != "ok"]
    row_of = {r["song_id"]: r for r in ok_rows}
    base = playlist.songs_dir(project)

    # --- genders (catalog label, else the classifier's prediction)
    try:
        genders = gender_mod.song_genders(project, list(row_of))
    except VocalError as e:
        genders = {sid: (g, "catalog") for sid, r in row_of.items()
                   if (g := catalog_mod.normalise_gender(r.get("gender")))}
        notes.append(f"gender predictions left out: {e}")

    # --- map (embeddings) and recommendations (index)
    from vocalcli.index import embedding_digests, load_embeddings, load_index
    from vocalcli.vectors import l2_rows

    xy_of: dict[str, tuple[float, float]] = {}
    map_info: dict[str, Any] | None = None
    try:
        emb = load_embeddings(project)
    except (MissingArtifact, StaleArtifact) as e:
        emb = None
        notes.append(f"no map: {e}")
    if emb is not None:
        ids = [s for s in emb.ids if s in row_of]
        emb_row = {s: i for i, s in enumerate(emb.ids)}
        rows = [emb_row[s] for s in ids]
        tick(advance=0, total=1, description="map (2-D projection)")
        digest = json.dumps(embedding_digests(project), sort_keys=True)
        xy, used = _map_xy(out_dir, ids, l2_rows(emb.timbre[rows]), cfg.report.map_method, cfg.seed, digest)
        xy = _unit_square(xy)
        xy_of = {s: (round(float(p[0]), 4), round(float(p[1]), 4)) for s, p in zip(ids, xy, strict=True)}
        map_info = {"method": used, "embedding": "timbre", "songs": len(ids)}
        tick(advance=1)
        unmapped = len(row_of) - len(ids)
        if unmapped:
            notes.append(f"{unmapped} prepared songs are not embedded yet (not on the map); run 'vocal embed' "
                         "and 'vocal index'")

    recs: dict[str, list[tuple[int, float, float, float]]] = {}
    index = None
    try:
        index = load_index(project, cfg)
    except (MissingArtifact, StaleArtifact) as e:
        notes.append(f"no recommendations: {e}")
    stats = None
    mix = (1.0, 0.0)
    if index is not None:
        from vocalcli.recommend import mode_mix

        singers_of_rows = [row_of.get(s, {}).get("singer", "") for s in index.ids]
        tick(advance=0, total=len(index.ids), description="recommendations")
        recs = recommendations(index, singers_of_rows, cfg.report.top_k, tick)
        stats = reasons.pair_stats(index.timbre, index.melody, singers_of_rows, cfg.seed)
        mix = mode_mix("both", index.weights)

    # --- clips
    if base is None or not base.is_dir():
        clip_res = clips_mod.ClipsResult({}, 0, 0, {}, 0)
        notes.append("no audio clips: the songs folder recorded by 'vocal prepare' "
                     f"({base or 'none: prepare.json is missing'}) is not there; run 'vocal prepare SONGS_DIR'")
    else:
        tick(advance=0, total=None, description="audio clips")
        clip_res = clips_mod.write_clips(project, cfg, ok_rows, base, out_dir,
                                         workers=workers or cfg.prepare.workers or 1, force=force,
                                         progress=tick)
        if clip_res.failed:
            first = next(iter(clip_res.failed.items()))
            notes.append(f"{len(clip_res.failed)} songs have no clips (e.g. {first[0]}: {first[1]})")

    # --- songs, in library order (singer, source); chunks follow that order
    songs = sorted(ok_rows, key=lambda r: (r["singer"].lower(), r["singer"], r.get("source", "")))
    singer_names = sorted({r["singer"] for r in catalog if r.get("singer")}, key=lambda s: (s.lower(), s))
    singer_idx = {s: i for i, s in enumerate(singer_names)}
    genres = sorted({r.get("genre") or "" for r in ok_rows} - {""})
    per_chunk = cfg.report.songs_per_chunk
    chunk_of = {r["song_id"]: i // per_chunk for i, r in enumerate(songs)}

    def gender_code(sid: str) -> str:
        g, src = genders.get(sid, (None, None))
        return "" if g is None else g + ("?" if src == "predicted" else "")

    table = {"id": [], "title": [], "singer": [], "gender": [], "genre": [], "x": [], "y": [], "chunk": [],
             "clip": []}
    for r in songs:
        sid = r["song_id"]
        p = xy_of.get(sid)
        table["id"].append(sid)
        table["title"].append(r.get("title") or sid)
        table["singer"].append(singer_idx[r["singer"]])
        table["gender"].append(gender_code(sid))
        table["genre"].append(r.get("genre") or "")
        table["x"].append(p[0] if p else None)
        table["y"].append(p[1] if p else None)
        table["chunk"].append(chunk_of[sid])
        table["clip"].append(1 if sid in clip_res.clips else 0)  # a match's clips play without its chunk

    meta_of = {sid: {"f0_hz": r.get("f0_hz"), "gender": genders.get(sid, (None,))[0], "genre": r.get("genre")}
               for sid, r in row_of.items()}
    playlists_dir = out_dir / "playlists"
    written_playlists: set[str] = set()
    details: dict[int, dict[str, Any]] = {}
    featured, featured_score = None, -math.inf
    for r in songs:
        sid = r["song_id"]
        items = []
        for rank, (row, score, ct, cm) in enumerate(recs.get(sid, []), start=1):
            other = index.ids[row]
            why = reasons.reason(ct, cm, stats, mix, meta_of[sid], meta_of.get(other, {}))
            items.append([other, round(score, 4), round(ct, 4), round(cm, 4), why])
            if rank == 1 and score > featured_score and sid in xy_of:
                featured, featured_score = sid, score
        pl = None
        if base is not None and items:
            entries = [playlist.catalog_entry(r, base, "the query song")]
            entries += [playlist.catalog_entry(row_of[o], base, f"#{i} {why}")
                        for i, (o, _, _, _, why) in enumerate(items, start=1) if o in row_of]
            name = f"{sid}{playlist.SUFFIX}"
            playlist.write_m3u8(playlists_dir / name, entries, f"Sung like {r.get('title')} ({r['singer']})")
            written_playlists.add(name)
            pl = f"playlists/{name}"
        c = clip_res.clips.get(sid)
        details.setdefault(chunk_of[sid], {})[sid] = {
            "source": r.get("source"), "path": str(base / r["source"]) if base else r.get("source"),
            "duration_s": _float(r.get("duration_s")), "separation": r.get("separation") or None,
            "f0_hz": _float(r.get("f0_hz")), "note": reasons.note_name(_float(r.get("f0_hz"))),
            "clip": ({"mix": c["original"], "voice": c["vocal"], "start_s": c["start_s"],
                      "seconds": c["seconds"]} if c else None),
            "clip_error": clip_res.failed.get(sid), "recs": items, "playlist": pl}
    if featured is None and songs:
        featured = next((r["song_id"] for r in songs if r["song_id"] in xy_of), songs[0]["song_id"])

    # --- write data, assets, page
    data_dir = out_dir / "data"
    chunk_names = set()
    for n, chunk in details.items():
        name = f"songs-{n:03d}.js"
        project_mod.write_text(data_dir / name, _js("chunk", n, _clean(chunk)))
        chunk_names.add(name)
    _remove_stale(data_dir, "songs-*.js", chunk_names)
    if playlists_dir.is_dir():
        _remove_stale(playlists_dir, f"*{playlist.SUFFIX}", written_playlists)

    by_singer: dict[str, list[dict[str, str]]] = {}
    for r in catalog:
        by_singer.setdefault(r.get("singer") or "", []).append(r)
    singers = []
    for s in singer_names:
        rows_s = by_singer[s]
        ok = [r for r in rows_s if r.get("status") == "ok"]
        first = rows_s[0]
        labelled = catalog_mod.normalise_gender(first.get("gender")) or ""
        predicted = Counter(gender_code(r["song_id"]) for r in ok).most_common(1)[0][0] if ok and not labelled else ""
        singers.append({"name": s, "gender": labelled or predicted, "genre": first.get("genre") or "",
                        "songs": len(ok), "not_prepared": len(rows_s) - len(ok)})
    evaluation = latest_evaluation(project)
    site = {
        "project": project.root.name, "root": str(project.root),
        "made": datetime.now().isoformat(timespec="seconds"),
        "songs": table, "singers": singers, "genres": genres,
        "failed": [{"source": r.get("source"), "singer": r.get("singer"), "status": r.get("status"),
                    "reason": r.get("reason")} for r in failed_rows],
        "map": map_info, "featured": featured, "top_k": cfg.report.top_k,
        "clip": {"names": dict(zip(("mix", "voice"), clips_mod.clip_names("{id}"), strict=True)),
                 "seconds": cfg.report.clip_s, "kbps": cfg.report.clip_kbps, "mime": clips_mod.MIME,
                 "sample_rate": cfg.audio.sample_rate, "window": [cfg.audio.start_s, cfg.audio.end_s]},
        "weights": index.weights if index is not None else None,
        "evaluation": ({"report": evaluation, "rows": evaluation_rows(evaluation)} if evaluation else None),
        "curves": training_curves(project),
        "notes": notes,
    }
    project_mod.write_text(data_dir / "site.js", _js("site", _clean(site)))
    _copy_assets(out_dir)
    return ReportResult(out_dir / "index.html", out_dir, len(singer_names), len(ok_rows), len(failed_rows),
                        len(xy_of), sum(1 for v in recs.values() if v), clip_res.written, clip_res.reused,
                        clip_res.failed, _dir_size(out_dir), time.perf_counter() - t0, notes)
