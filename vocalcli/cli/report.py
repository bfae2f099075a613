"""`vocal report`: the project as a static site to open in a browser (vocalcli.report).

Registered in vocalcli.cli; a plain function, importable and testable alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vocalcli.cli.options import (
    ForceOpt,
    JsonOpt,
    ProjectOpt,
    QuietOpt,
    WaitOpt,
    WorkersOpt,
    open_project,
    writing,
)
from vocalcli.console import emit_json, progress_bar, say


def report(
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Folder to write the site into (default: report/ in the project).",
        show_default=False)] = None,
    project: ProjectOpt = None,
    workers: WorkersOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Write the project as a page you open from disk: map, songs to listen to, matches, quality.

    The site works offline from file:// (every script is in the folder): a map of the songs by voice
    (hover, click to play, colour by singer / gender / genre); for every song a clip of its loudest
    singing and of the same seconds after accompaniment removal, its closest songs by other singers
    with the reason in words, and a .m3u8 playlist; the library with every file that was not prepared
    and why; the last `vocal evaluate` and the training curves. Clips of unchanged songs are reused on
    a rerun (--force rewrites them). What is missing (no models, no index) is named with the command
    to run, and the rest is still written. It reads the project like `vocal plot` (so it runs while a
    model trains) and locks only its own folder against a second report.
    """
    from vocalcli.report import write_report

    proj = open_project(project)
    cfg = proj.load_config()
    out_dir = output if output is not None else proj.root / "report"
    with writing(out_dir, "vocal report"), progress_bar("report", total=None) as update:
        res = write_report(proj, cfg, out_dir, workers=workers, force=force, progress=update)
    for note in res.notes:
        say(f"[yellow]note:[/] {note}")
    if res.clips_failed:
        say(f"[yellow]{len(res.clips_failed)} songs have no clips[/]; the reasons are on their pages")
    if json_:
        from dataclasses import asdict

        emit_json(asdict(res))
        return
    say(f"{res.songs} songs by {res.singers} singers ({res.mapped} on the map, {res.with_recommendations} with "
        f"recommendations); clips: {res.clips_written} written, {res.clips_reused} reused; "
        f"{res.bytes / 1e6:.1f} MB in {res.seconds:.0f} s")
    say(f"open [bold]{res.path.resolve().as_uri()}[/] in a browser")
