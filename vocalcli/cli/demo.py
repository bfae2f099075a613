"""`vocal demo`: the whole pipeline on a synthesized library, explained step by step (vocalcli.demo).

Registered in vocalcli.cli; a plain function, importable and testable alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vocalcli.cli.options import JsonOpt, QuietOpt, WaitOpt, writing
from vocalcli.console import emit_json, say


def demo(
    directory: Annotated[Path, typer.Argument(help="Where to create the demo project.")] = Path("vocal-demo"),
    quick: Annotated[bool, typer.Option(
        "--quick", help="14-second songs and a 10-second window instead of 2:40 songs (for tests).")] = False,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Parallel processes.", min=1)] = 2,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Synthesize a small labelled library and run the whole pipeline on it, explaining each step.

    6 singers x 8 songs (male and female, each with its own timbre and vibrato, with accompaniment; some
    songs too short), then prepare -> balance -> train -> embed -> gender -> index -> recommend ->
    evaluate -> plot -> report (a page to listen to). Rerunning reuses what is done.
    """
    import time

    from vocalcli import demo as demo_mod

    t0 = time.perf_counter()
    say(f"[bold]vocal demo[/] in {directory.resolve()}")

    def step(name: str, summary: dict) -> None:
        say(f"[green]✓ {name}[/] ({time.perf_counter() - t0:.0f} s) " + _describe(name, summary))

    from vocalcli.console import progress_bar

    directory.mkdir(parents=True, exist_ok=True)
    with writing(directory, "vocal demo"):
        report = demo_mod.run_demo(directory, quick=quick, workers=workers, step=step,
                                   progress_factory=progress_bar)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    say(f"done in {report['seconds']:.0f} s. Listen to it: open [bold]{Path(report['report']['page']).as_uri()}[/] "
        f"in a browser. Then try: cd {directory} && vocal --help")
    if json_out:
        emit_json(report)


def _describe(name: str, s: dict) -> str:
    """One line per demo step, for people, in plain words."""
    if name == "synthesize":
        return (f"reused the songs in {s['dir']}" if s.get("reused") else
                f"{s['songs']} songs by {s['singers']} synthetic singers in {s['dir']} (+ singers.csv)")
    if name == "prepare":
        return (f"decoded, removed the accompaniment ({s['separation']}) and made mels: {s['counts']} "
                f"({s['skipped']} already done)")
    if name.startswith("train-"):
        acc = s.get("val_singer_acc")
        return (f"{s['epochs']} epochs, {s['steps']} steps, final loss {s.get('train_loss', float('nan')):.3f}"
                + (f" (chance ln N = {s['train_ln_n']:.2f})" if "train_ln_n" in s else "")
                + (f", val singer-ID {acc:.2f}" if acc is not None else "") + f" -> {s['checkpoint']}")
    if name == "recommend":
        return f"songs like {s['query']}: " + "; ".join(s["top"])
    if name == "evaluate":
        line = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()
                         if k not in ("below_baseline", "caveat"))
        if s.get("below_baseline"):
            line += f"\n  below the same-run baseline here: {'; '.join(s['below_baseline'])}"
        return line + (f"\n  note: {s['caveat']}" if s.get("caveat") else "")
    if name == "report":
        return (f"a page to listen to: {s['songs']} songs with clips of the mix and of the voice "
                f"({s['clips_written']} written, {s['clips_reused']} reused, {s['megabytes']} MB)")
    if name == "balance":
        return (f"{s['kept']} singers kept, short songs replaced {s['replaced']}, dropped {s['dropped']}; "
                f"splits {s['splits']}")
    return ", ".join(f"{k}: {v}" for k, v in s.items() if not isinstance(v, (dict, list)))
