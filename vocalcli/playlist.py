"""Playlists of song files (.m3u8) that every music player opens: the "instant mix".

Extended M3U in UTF-8 (``#EXTM3U``, one ``#EXTINF:seconds,artist - title`` before each path) is the one
playlist format that VLC, mpv, foobar2000, iTunes/Music, Jellyfin, Navidrome and phones all read.
Paths are absolute: a playlist is then valid wherever it is saved (the report's folder, a phone's
download folder) as long as the songs stay where `vocal prepare` found them. A path that cannot be
written on one line (a newline in a file name) is refused rather than written broken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocalcli import project as project_mod
from vocalcli.errors import VocalError

SUFFIX = ".m3u8"


@dataclass(frozen=True)
class Entry:
    path: str  # absolute path of the audio file
    artist: str
    title: str
    seconds: float | None = None  # whole-file duration; None = unknown (-1 in the file)
    comment: str = ""  # written as a '# ' line above the entry (players ignore it): e.g. why it matched


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def m3u8_text(entries: Iterable[Entry], title: str | None = None) -> str:
    """The playlist as text (``#EXTM3U`` header, optional ``#PLAYLIST`` title, one entry per song)."""
    lines = ["#EXTM3U"]
    if title:
        lines.append(f"#PLAYLIST:{_one_line(title)}")
    for e in entries:
        if "\n" in e.path or "\r" in e.path:
            raise VocalError(f"cannot put {e.path!r} in a playlist: its name holds a line break; rename the file")
        if e.comment:
            lines.append(f"# {_one_line(e.comment)}")
        secs = -1 if e.seconds is None else max(0, round(e.seconds))
        name = f"{_one_line(e.artist)} - {_one_line(e.title)}" if e.artist else _one_line(e.title)
        lines.append(f"#EXTINF:{secs},{name}")
        lines.append(e.path)
    return "\n".join(lines) + "\n"


def write_m3u8(path: Path, entries: Sequence[Entry], title: str | None = None) -> Path:
    """Write the playlist atomically; returns ``path``."""
    project_mod.write_text(Path(path), m3u8_text(entries, title))
    return Path(path)


def read_m3u8(path: Path) -> list[str]:
    """The file paths of a playlist (for tests and round trips): every non-empty line not starting '#'."""
    text = Path(path).read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def songs_dir(project: project_mod.Project) -> Path | None:
    """Where the project's songs are (prepare.json's songs_dir), or None before `vocal prepare`."""
    import json

    try:
        info = json.loads(project.prepare_info.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    d = info.get("songs_dir")
    return Path(d) if d else None


def catalog_entry(row: dict[str, str], base: Path | None, comment: str = "") -> Entry:
    """An Entry for a catalog row (source resolved against the songs directory)."""
    src = Path(row.get("source") or "")
    path = src if src.is_absolute() or base is None else base / src
    try:
        secs = float(row.get("duration_s") or "nan")
    except ValueError:
        secs = float("nan")
    return Entry(str(path), row.get("singer", ""), row.get("title", ""), secs if secs == secs else None, comment)


def recommendation_entries(project: project_mod.Project, result: Any) -> list[Entry]:
    """A recommend.RecommendResult as playlist entries: the query (a file or an indexed song) first, then
    every recommended song with its similarities as the comment."""
    from vocalcli import catalog

    rows = catalog.by_id(project)
    base = songs_dir(project)
    q = result.query
    entries = []
    if q.get("kind") == "audio":
        path = Path(q["what"]).resolve()
        entries.append(Entry(str(path), "", path.stem, None, "the query"))
    elif q.get("kind") == "song" and q.get("what") in rows:
        entries.append(catalog_entry(rows[q["what"]], base, "the query"))
    for it in result.items:
        row = rows.get(it.song_id)
        if row is None:
            continue
        entries.append(catalog_entry(row, base, f"#{it.rank} score {it.score:.3f} (timbre {it.timbre_sim:.2f}, "
                                                f"melody {it.melody_sim:.2f})"))
    return entries
