"""Commands that use the models: classify-gender train/predict, index, recommend, evaluate, plot
(registered in vocalcli.cli; each is a plain function, importable and testable alone).

Thin: each parses, opens the project, calls one library function, renders. Library imports live inside
the commands so `vocal --help` stays instant. Results (tables, --json) go to stdout, talk to stderr.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from vocalcli.catalog import GENDERS
from vocalcli.cli.options import (
    Device,
    DeviceOpt,
    GpuOpt,
    JsonOpt,
    ProjectOpt,
    QuietOpt,
    SeparateOpt,
    WaitOpt,
    choice_enum,
    open_project,
    writing,
)
from vocalcli.config import GENDER_FEATURES, PROJECTIONS
from vocalcli.console import emit_json, out, progress_bar, say


class Mode(StrEnum):
    VOICE = "voice"
    MELODY = "melody"
    BOTH = "both"


Gender = choice_enum("Gender", GENDERS)
GenderFeatures = choice_enum("GenderFeatures", GENDER_FEATURES)


class ColorBy(StrEnum):
    SINGER = "singer"
    GENDER = "gender"
    GENRE = "genre"


class EmbeddingKind(StrEnum):
    TIMBRE = "timbre"
    MELODY = "melody"


Method = choice_enum("Method", PROJECTIONS)


def _device(device: Device, gpu: bool) -> str:
    from vocalcli.device import resolve_device

    return str(resolve_device(device.value, gpu))


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def gender_train(
    project: ProjectOpt = None,
    features: Annotated[GenderFeatures | None, typer.Option(
        "--features", help="Classifier input (default: gender.features in vocal.yaml). Every kind is "
        "evaluated on held-out singers and compared; this one is saved.", show_default=False)] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Train the gender classifier (split by singer) -> checkpoints/gender/best.pt."""
    from vocalcli import gender

    proj = open_project(project)
    cfg = proj.load_config()
    with writing(proj.root, "vocal classify-gender train"), progress_bar("mel statistics", total=None) as update:
        report = gender.train(proj, cfg, features.value if features else None, progress=update)
    if json_:
        emit_json(report)
        return
    from rich.table import Table

    t = Table(title=f"gender on {len(report['heldout_singers'])} held-out singers "
                    f"({', '.join(report['heldout_singers'])})")
    for col in ("features", "balanced acc.", "recall f", "recall m", "confusion [[ff, fm], [mf, mm]]"):
        t.add_column(col)
    for kind, m in report["compare"].items():
        mark = " (saved)" if kind == report["features"] else ""
        t.add_row(kind + mark, _fmt(m["balanced_accuracy"]), _fmt(m["recall"]["f"]),
                  _fmt(m["recall"]["m"]), str(m["confusion"]["matrix"]))
    out.print(t)
    if report["unlabelled_songs"]:
        say(f"{report['unlabelled_songs']} songs of unlabelled singers were left out")
    say(f"saved [bold]{report['checkpoint']}[/] (refit on all {report['n_songs']} labelled songs)")

def gender_predict(
    files: Annotated[list[Path] | None, typer.Argument(help="Audio files to classify.",
                                                       show_default=False)] = None,
    catalog: Annotated[bool, typer.Option("--catalog", help="Predict every catalog song whose singer "
                                          "has no gender label.")] = False,
    separate: SeparateOpt = None,
    project: ProjectOpt = None,
    device: DeviceOpt = Device.AUTO,
    gpu: GpuOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Print gender (f/m) + probability for audio files and/or unlabelled catalog songs."""
    from vocalcli import gender
    from vocalcli.errors import VocalError

    if not files and not catalog:
        raise VocalError("give audio files to classify, or --catalog for unlabelled catalog songs")
    proj = open_project(project)
    cfg = proj.load_config()
    rows: list[dict] = []
    if files:
        with progress_bar("classifying", total=len(files)) as update:
            rows += gender.predict_files(proj, cfg, files, separate.value if separate else None,
                                         _device(device, gpu), progress=update)
    if catalog:
        rows += gender.predict_catalog(proj)
    failed = [r for r in rows if "error" in r]
    if json_:
        emit_json(rows)
    else:
        from rich.table import Table

        t = Table()
        for col in ("song", "gender", "probability", "note"):
            t.add_column(col)
        for r in rows:
            note = r.get("error") or "; ".join(r.get("warnings", []))
            if r.get("singer_songs", 1) > 1:
                note = f"one gender for {r['singer']}'s {r['singer_songs']} songs"
            t.add_row(r.get("path") or r.get("song_id"), r.get("gender", "-"),
                      _fmt(r.get("probability")), note)
        out.print(t)
        if catalog and not any("song_id" in r for r in rows):
            say("no unlabelled catalog songs")
    if failed:
        say(f"[red]{len(failed)} of {len(rows)} files failed[/]")
        raise typer.Exit(1)

def index(
    project: ProjectOpt = None,
    n_trees: Annotated[int | None, typer.Option("--n-trees", min=1, help="Annoy trees (default: "
                                                "index.n_trees in vocal.yaml).", show_default=False)] = None,
    search_k: Annotated[int | None, typer.Option("--search-k", min=0, help="Annoy search_k; 0 = choose "
                                                 "for recall@10 >= 0.99 (default: vocal.yaml).",
                                                 show_default=False)] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Build the song index (index/songs.ann + index/index.json) over every embedded song."""
    from dataclasses import asdict

    from vocalcli import config as config_mod
    from vocalcli import index

    proj = open_project(project)
    cfg = config_mod.override(proj.load_config(), {"index.n_trees": n_trees, "index.search_k": search_k})
    with writing(proj.root, "vocal index"), progress_bar("indexing", total=3) as update:
        info = index.build_index(proj, cfg, progress=update)
    if json_:
        emit_json(asdict(info))
        return
    say(f"indexed [bold]{info.n}[/] songs -> {info.path} (dim {info.dim}, {info.n_trees} trees, "
        f"search_k {info.search_k}, recall@10 {info.recall_at_10:.3f} vs exact)")

def recommend(
    query: Annotated[Path | None, typer.Argument(help="An audio file to find similar songs for.",
                                                 show_default=False)] = None,
    song_id: Annotated[str | None, typer.Option(
        "--song-id", help="Use an indexed song as the query: its song id, SINGER/TITLE, or a title only one "
        "song has.", show_default=False)] = None,
    singer: Annotated[str | None, typer.Option("--singer", help="More like this singer (mean of their "
                                               "songs).", show_default=False)] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many songs.")] = 10,
    mode: Annotated[Mode, typer.Option("--mode", help="Rank by voice (timbre), melody, or both "
                                       "(index.weights).")] = Mode.BOTH,
    exclude_singer: Annotated[bool | None, typer.Option(
        "--exclude-singer/--include-singer",
        help="Leave out the query singer's songs (default: on for --song-id/--singer, off for files).",
        show_default=False)] = None,
    gender: Annotated[Gender | None, typer.Option("--gender", help="Only f or m singers (catalog label, "
                                                  "else the classifier's prediction).",
                                                  show_default=False)] = None,
    separate: SeparateOpt = None,
    m3u: Annotated[Path | None, typer.Option(
        "--m3u", help="Also write the query and its matches as a playlist (.m3u8) that music players open.",
        show_default=False)] = None,
    project: ProjectOpt = None,
    device: DeviceOpt = Device.AUTO,
    gpu: GpuOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Songs whose singing voice (and/or melody) is like QUERY's."""
    from vocalcli.recommend import recommend

    proj = open_project(project)
    cfg = proj.load_config()
    res = recommend(
        proj, cfg, audio=query, song_id=song_id, singer=singer, k=k, mode=mode.value,
        exclude_singer=exclude_singer, gender=gender.value if gender else None,
        separate=separate.value if separate else None,
        device=_device(device, gpu) if query is not None else "cpu",
    )
    for w in res.warnings:
        say(f"[yellow]warning:[/] {w}")
    if m3u is not None:
        from vocalcli import playlist

        playlist.write_m3u8(m3u, playlist.recommendation_entries(proj, res), f"vocal: like {res.query['what']}")
        say(f"playlist: {m3u}")
    if json_:
        emit_json(res.to_dict() | ({"playlist": str(m3u)} if m3u is not None else {}))
        return
    from rich.table import Table

    q = res.query
    in_catalog = f" (catalog song {q['song_id']}, left out)" if q.get("song_id") else ""
    what = {"audio": f"file {q['what']}{in_catalog}", "song": f"song {q['what']} ({q.get('singer')})",
            "singer": f"singer {q['what']} ({q.get('n_songs')} songs)"}[q["kind"]]
    t = Table(title=f"like {what}, by {res.mode}" + (", other singers" if res.filters["exclude_singer"]
                                                     else ""))
    for col, just in (("#", "right"), ("singer", "left"), ("title", "left"), ("score", "right"),
                      ("timbre sim", "right"), ("melody sim", "right"), ("gender", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for it in res.items:
        g = (it.gender or "-") + ("?" if it.gender_source == "predicted" else "")
        t.add_row(str(it.rank), it.singer, it.title, _fmt(it.score), _fmt(it.timbre_sim),
                  _fmt(it.melody_sim), g)
    out.print(t)
    if any(it.gender_source == "predicted" for it in res.items):
        say("gender with ? = predicted by the classifier")

def evaluate(
    melody_labels: Annotated[Path | None, typer.Option(
        "--melody-labels", help="CSV with columns source,melody (source as in catalog.csv) for the "
        "melody MAP.", show_default=False)] = None,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Every metric next to its baseline, in one report (`runs/evaluate/TIMESTAMP/report.json`)."""
    from vocalcli.evaluate import METRICS, evaluate

    proj = open_project(project)
    cfg = proj.load_config()
    with progress_bar("features", total=None) as update:
        rep = evaluate(proj, cfg, melody_labels, progress=update)
    for n in rep["notes"]:
        say(f"[yellow]note:[/] {n}")
    if json_:
        emit_json(rep)
        return
    from rich.table import Table

    t = Table(title=f"vocal evaluate ({rep['n_songs']} songs)")
    for col in ("metric", "vocal", "baseline", "baseline is"):
        t.add_column(col)
    for m in METRICS:
        t.add_row(m.key, _fmt(rep.get(m.key)), _fmt(rep.get(m.baseline)) if m.baseline else "1.000",
                  m.baseline_label)
    out.print(t)
    say(f"report: {rep['report']}")

def plot(
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")] = Path("map.png"),
    singers: Annotated[str | None, typer.Option("--singers", help="Comma-separated singers (default: "
                                                "the 4 with the most songs).", show_default=False)] = None,
    color: Annotated[ColorBy, typer.Option("--color", help="Colour points by.")] = ColorBy.SINGER,
    embedding: Annotated[EmbeddingKind, typer.Option("--embedding", help="Which embedding.")]
    = EmbeddingKind.TIMBRE,
    method: Annotated[Method, typer.Option("--method", help="t-SNE or PCA.")] = Method.TSNE,
    width: Annotated[int, typer.Option("--width", min=100, help="Image width in pixels.")] = 1000,
    height: Annotated[int, typer.Option("--height", min=100, help="Image height in pixels.")] = 800,
    project: ProjectOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """A 2-D map (t-SNE/PCA) of the chosen singers' song embeddings, as PNG."""
    from dataclasses import asdict

    from vocalcli.plot import plot_map

    proj = open_project(project)
    cfg = proj.load_config()
    names = [s.strip() for s in singers.split(",") if s.strip()] if singers else None
    res = plot_map(proj, cfg, output, names, color.value, embedding.value, method.value, width, height)
    if json_:
        emit_json(asdict(res))
        return
    say(f"wrote [bold]{res.path}[/] ({res.width}x{res.height} px, {res.n_songs} songs of "
        f"{', '.join(res.singers)}, {res.method.upper()})")
