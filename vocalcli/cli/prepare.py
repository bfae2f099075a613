"""Commands that make the data: prepare (songs -> catalog + mels) and balance (-> balanced.csv).

Registered in vocalcli.cli; each is a plain function, importable and testable alone. Library imports live
inside the commands so `vocal --help` stays instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from vocalcli.cli.options import (
    Device,
    DeviceOpt,
    ForceOpt,
    GpuOpt,
    JsonOpt,
    ProjectOpt,
    QuietOpt,
    SeparateOpt,
    WaitOpt,
    WorkersOpt,
    writing,
)
from vocalcli.console import emit_json, err, say
from vocalcli.errors import VocalError


def prepare(
    songs_dir: Annotated[Path | None, typer.Argument(
        help="Folder laid out as `SONGS_DIR/SINGER/SONG.EXT` (wav, flac, ogg, opus, mp3, m4a, ...).",
        show_default=False)] = None,
    project: ProjectOpt = None,
    meta: Annotated[Path | None, typer.Option(
        "--meta", help="singers.csv with columns singer,gender[,genre] (default: SONGS_DIR/singers.csv).",
        show_default=False)] = None,
    separate: SeparateOpt = None,
    workers: WorkersOpt = None,
    device: DeviceOpt = Device.AUTO,
    gpu: GpuOpt = False,
    force: ForceOpt = False,
    shard: Annotated[str | None, typer.Option(
        "--shard", help="Process only the I-th of N deterministic subsets (e.g. 2/8), for spreading a "
        "library over machines; then run 'vocal prepare --merge-shards'.", show_default=False)] = None,
    merge_shards: Annotated[bool, typer.Option(
        "--merge-shards", help="Merge the shard catalogs of finished --shard runs into catalog.csv.")] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Decode, separate the voice, cut the window and compute log-mels for every song.

    Creates the project (vocal.yaml with every default) if there is none. Resumable: songs already done
    with the same settings are skipped; changed files are redone; --force redoes everything. Exits 1 if
    any file failed (each failure is in catalog.csv with its reason).
    """
    from vocalcli import config as config_mod
    from vocalcli import prepare as prep
    from vocalcli import project as project_mod
    from vocalcli.console import progress_bar

    root = project or Path(os.environ.get("VOCAL_PROJECT") or ".")
    if merge_shards:
        proj = project_mod.find(root)
        with writing(proj.root, "vocal prepare --merge-shards"):  # refused (or --wait) while a shard runs
            rows = prep.merge_shards(proj)
        say(f"merged shard catalogs: {len(rows)} songs in {proj.catalog}")
        if json_out:
            emit_json({"songs": len(rows), "catalog": str(proj.catalog)})
        return
    if songs_dir is None:
        raise typer.BadParameter("SONGS_DIR is required (or --merge-shards)")
    created = not (Path(root) / project_mod.CONFIG_NAME).is_file()
    proj = project_mod.init(root)  # prepare makes the project here; it does not walk up
    if created:
        say(f"created project {proj.root} (every setting in {proj.config_path.name})")
    cfg = config_mod.override(proj.load_config(), {"prepare.separate": separate.value if separate else None})
    shard_t = prep.parse_shard(shard)
    if gpu and device.value not in ("auto", "cuda"):
        raise VocalError(f"--gpu means cuda but --device {device.value} was also given; pass only one")
    dev = "cuda" if gpu else device.value  # where demucs runs; the other separators are CPU code
    with writing(proj.root, "vocal prepare", shard_t), progress_bar("prepare", total=None) as bar:
        result = prep.prepare_files(
            proj, songs_dir, cfg, meta_path=meta, workers=workers, force=force, shard=shard_t,
            progress=bar, on_total=lambda n: bar(advance=0, total=n), device=dev, log=say,
        )
    _render_prepare(result)
    for w in result.warnings:
        say(f"[yellow]warning:[/] {w}")
    if json_out:
        emit_json({"counts": result.counts, "processed": result.processed, "skipped": result.skipped,
                    "separation": result.separation, "catalog": str(result.catalog),
                    "seconds": round(result.seconds, 2), "warnings": result.warnings,
                    "failed": [{k: r[k] for k in ("source", "status", "reason")} for r in result.failed]})
    if result.failed:
        raise typer.Exit(1)


def _render_prepare(result) -> None:  # noqa: ANN001
    from rich.table import Table

    from vocalcli.console import is_quiet

    if is_quiet():
        return
    err.print(f"prepare: {result.processed} processed, {result.skipped} already done "
              f"in {result.seconds:.1f} s (separation: {result.separation})")
    t = Table()
    t.add_column("status")
    t.add_column("songs", justify="right")
    for status, n in sorted(result.counts.items()):
        t.add_row(status, str(n))
    err.print(t)
    problems = [r for r in result.rows if r["status"] != "ok"]
    if problems:
        p = Table(title="songs not usable")
        for c in ("source", "status", "reason"):
            p.add_column(c, overflow="fold")
        for r in problems[:50]:
            p.add_row(r["source"], r["status"], r["reason"])
        if len(problems) > 50:
            p.add_row("...", "", f"{len(problems) - 50} more in catalog.csv")
        err.print(p)
    err.print(f"catalog: {result.catalog}")


def balance(
    project: ProjectOpt = None,
    songs_per_singer: Annotated[int | None, typer.Option(
        "--songs-per-singer", "-n", help="Songs kept per singer (default: vocal.yaml balance.songs_per_singer).",
        min=1, show_default=False)] = None,
    holdout_singers: Annotated[int | None, typer.Option(
        "--holdout-singers", help="Put K whole singers into the test split (unseen-singer checks).",
        min=0, show_default=False)] = None,
    holdout: Annotated[list[str] | None, typer.Option(
        "--holdout", help="Put this singer's songs all into the test split (repeatable): a voice that no "
        "training and no choice sees, for `vocal evaluate`'s unseen-voice numbers (default: vocal.yaml "
        "balance.holdout).", show_default=False)] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Pick exactly N full-length songs per singer and split them train/val/test within each singer.

    Too-short or failed songs are replaced by the singer's other songs; singers with fewer than N usable
    songs are dropped and listed. Deterministic for the seed in vocal.yaml. Writes balanced.csv.
    """
    from rich.table import Table

    from vocalcli import balance as bal
    from vocalcli import catalog
    from vocalcli import project as project_mod
    from vocalcli.console import is_quiet

    proj = project_mod.find(project)
    cfg = proj.load_config()
    with writing(proj.root, "vocal balance"):
        result = bal.balance(catalog.read(proj), cfg.balance, cfg.seed,
                             songs_per_singer, holdout_singers, holdout)
        if not result.rows:
            raise VocalError(
                f"no singer has {songs_per_singer or cfg.balance.songs_per_singer} usable songs; "
                "lower --songs-per-singer or add songs (see 'vocal prepare' summary)")
        project_mod.write_csv(proj.balanced, result.rows, project_mod.BALANCED_FIELDS)
    if not is_quiet():
        sc = result.split_counts()
        err.print(f"kept {len(result.kept_singers)} singers x {len(result.rows) // len(result.kept_singers)} "
                  f"songs: train {sc['train']}, val {sc['val']}, test {sc['test']}"
                  + (f"; held-out singers: {', '.join(result.holdout)}" if result.holdout else ""))
        if result.replaced:
            err.print("replaced unusable songs: " + ", ".join(f"{s} ({n})" for s, n in result.replaced.items()))
        if result.dropped:
            t = Table(title="dropped singers (fewer usable songs than required)")
            for c in ("singer", "usable", "total", "why not usable"):
                t.add_column(c)
            for d in result.dropped:
                t.add_row(d.singer, str(d.eligible), str(d.total),
                          ", ".join(f"{k}: {v}" for k, v in d.reasons.items()))
            err.print(t)
        err.print(f"wrote {proj.balanced}")
    if json_out:
        emit_json({"kept": result.kept_singers, "holdout": result.holdout, "splits": result.split_counts(),
                    "replaced": result.replaced,
                    "dropped": [d.__dict__ for d in result.dropped], "balanced": str(proj.balanced)})
