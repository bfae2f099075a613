"""catalog.csv: one row per song file that `vocal prepare` saw, and the singers' gender labels.

Every stage after prepare reads the catalog through here, so its columns, which rows count ("ok") and
how a gender label is spelled have one definition. Light on purpose (csv only): the CLI and every
library module may import it.
"""

from __future__ import annotations

from pathlib import Path

from vocalcli import project as project_mod
from vocalcli.errors import MissingArtifact, VocalError

FIELDS = [
    "song_id", "singer", "title", "source", "duration_s", "status", "reason", "mel",
    "gender", "genre", "separation", "f0_hz", "f0_p75_hz", "size", "mtime_ns", "settings", "mel_stamp",
    "residue", "pitch",
]
"""catalog.csv columns; size + mtime_ns detect a changed source, settings = hash of what shaped the mel;
f0_hz / f0_p75_hz = the sung register (vocalcli.pitch), for gender; mel_stamp = size:mtime_ns of the mel
as written, so a mel rewritten since is never trusted (vocalcli.prepare.mel_stamp); residue = the residue
mel's path (empty when no separation ran), for the timbre encoder's training; pitch = the f0 track's path
(pitch/<id>.npy), for the melody vector."""

REQUIRED = ("song_id", "singer", "status", "mel")
"""Columns every reader relies on: a catalog without one is refused in one line, not used half."""

GENDERS = ("f", "m")
"""The gender codes: the classes of vocalcli.gender and the values of --gender."""
GENDER_WORDS = {"f": "female", "m": "male"}
"""How catalog.csv spells the codes out."""
_GENDER_ALIASES = {"f": "f", "female": "f", "woman": "f", "w": "f", "m": "m", "male": "m", "man": "m"}


def normalise_gender(label: str | None) -> str | None:
    """'female'/'F'/'woman' -> 'f', 'male'/'M'/'man' -> 'm', anything else (empty, other) -> None."""
    return _GENDER_ALIASES.get((label or "").strip().lower())


def gender_word(label: str | None) -> str | None:
    """A label as catalog.csv writes it ('female' / 'male'), or None when it is neither."""
    return GENDER_WORDS.get(normalise_gender(label) or "")


def read_singers(path: Path | None, warnings: list[str] | None = None) -> dict[str, dict[str, str]]:
    """singers.csv (singer, gender[, genre]) -> {singer: {'gender': 'female'|'male'|..., 'genre': ...}}.

    Header names are matched without case or surrounding spaces. A singer listed twice with different
    values is an error (which one is right?); a gender other than f/m/female/male/... is kept as written
    and noted in ``warnings``, because the gender classifier will not use it.
    """
    if path is None or not Path(path).is_file():
        return {}
    raw = project_mod.read_csv(Path(path))
    rows = [{(k or "").strip().lower(): (v or "") for k, v in r.items() if isinstance(v, str)} for r in raw]
    header = [(k or "").strip().lower() for k in (raw[0].keys() if raw else [])]
    if raw and ("singer" not in header or "gender" not in header):
        raise VocalError(f"{path}: needs columns singer,gender[,genre]; found {', '.join(map(str, raw[0]))}")
    meta: dict[str, dict[str, str]] = {}
    line_of: dict[str, int] = {}
    unknown: dict[str, list[str]] = {}
    for line, r in enumerate(rows, start=2):
        name = r["singer"].strip()
        if not name:
            continue
        g = r.get("gender", "").strip().lower()
        entry = {"gender": gender_word(g) or g, "genre": r.get("genre", "").strip()}
        if name in meta and meta[name] != entry:
            raise VocalError(f"{path}: singer {name!r} is listed twice with different values (lines "
                             f"{line_of[name]} and {line}); keep one row per singer")
        meta[name], line_of[name] = entry, line
        if g and normalise_gender(g) is None:
            unknown.setdefault(g, []).append(name)
    if warnings is not None and unknown:
        what = "; ".join(f"{g!r} ({', '.join(names[:3])}{' ...' if len(names) > 3 else ''})"
                         for g, names in unknown.items())
        warnings.append(f"{path}: gender {what} is not f/m/female/male: kept as written, but the gender "
                        "classifier leaves these singers out")
    return meta


def read(project: project_mod.Project) -> list[dict[str, str]]:
    """Every row, in catalog order; MissingArtifact (naming 'vocal prepare') when there is no catalog."""
    if not project.catalog.is_file():
        raise MissingArtifact(f"no {project.catalog.name} in {project.root}; run 'vocal prepare SONGS_DIR' first")
    return project_mod.read_csv(project.catalog, required=REQUIRED,
                                fix="rerun 'vocal prepare SONGS_DIR' to rewrite it")


def ok_rows(project: project_mod.Project) -> list[dict[str, str]]:
    """The rows whose song was prepared (status 'ok'): the songs every later stage works on."""
    return [r for r in read(project) if r.get("status") == "ok"]


def by_id(project: project_mod.Project) -> dict[str, dict[str, str]]:
    """{song_id: row} of every row (any status); empty when there is no catalog yet."""
    return {r["song_id"]: r for r in read(project)} if project.catalog.is_file() else {}


def write(path: Path, rows: list[dict]) -> None:
    """catalog.csv (or a shard's) atomically, in FIELDS order."""
    project_mod.write_csv(path, rows, FIELDS)
