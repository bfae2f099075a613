"""Hostile inputs (issue 10): each ends in a catalog row with its reason, or in one line on stderr and a
non-zero exit; never a traceback, and nothing good is overwritten.

One parametrised case per input. A case builds its input in ``tmp_path`` (songs, a project, or a copy of
the session's tiny trained project), runs one command in-process, and says what must come out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import songs_dir, voice
from typer.testing import CliRunner

from vocalcli import project as project_mod
from vocalcli.cli import app

runner = CliRunner()
SR = 16000


@dataclass
class Expect:
    code: int
    error: tuple[str, ...] = ()  # substrings of the one 'error:' line
    rows: dict[str, str] = field(default_factory=dict)  # catalog source -> status
    output: tuple[str, ...] = ()  # substrings anywhere in stderr/stdout (warnings, results)
    absent: tuple[str, ...] = ()  # must not appear anywhere
    check: Callable[[], None] | None = None


@dataclass
class Case:
    args: list[str]
    expect: Expect
    env: dict[str, str] = field(default_factory=dict)



def prepare_case(tmp: Path, project: Path, *extra: str, **expect) -> Case:
    return Case(["prepare", str(tmp / "songs"), "-p", str(project), *extra], Expect(**expect))


def copy_trained(trained: Path, tmp: Path) -> Path:
    dst = tmp / "trained"
    shutil.copytree(trained, dst)
    return dst


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ------------------------------------------------------------------------------------------ the cases
# Each takes (tmp_path, tiny project dir, trained project dir) and returns a Case.

def non_utf8_file_name(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    shutil.copy(songs / "singer0/song0.flac", os.fsencode(songs / "singer0") + b"/caf\xe9.flac")
    return prepare_case(tmp, proj, code=1, rows={"singer0/caf\\xe9.flac": "bad_name", "singer0/song0.flac": "ok"})


def singers_csv_with_bom(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    (songs / "singers.csv").write_bytes(b"\xef\xbb\xbfsinger,gender\r\nsinger0,F\r\n")

    def check():
        assert {r["gender"] for r in project_mod.read_csv(proj / "catalog.csv")} == {"female"}
    return prepare_case(tmp, proj, code=0, rows={"singer0/song0.flac": "ok"}, check=check)


def singers_csv_latin1(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    (songs / "singers.csv").write_bytes("singer,gender,genre\nsinger0,f,chanson française\n".encode("latin-1"))
    return prepare_case(tmp, proj, code=1, error=("singers.csv is not UTF-8", "save it as UTF-8"))


def vocal_yaml_latin1(tmp, proj, trained):
    songs_dir(tmp / "songs")
    (proj / "vocal.yaml").write_bytes("# réglages\nseed: 1\n".encode("latin-1"))
    return prepare_case(tmp, proj, code=1, error=("vocal.yaml is not UTF-8",))


def yaml_case(text: str, key: str, why: str):
    def case(tmp, proj, trained):
        songs_dir(tmp / "songs")
        (proj / "vocal.yaml").write_text((proj / "vocal.yaml").read_text() + text)
        return prepare_case(tmp, proj, code=1, error=(f"'{key}'", why), absent=("Traceback",))
    return case


def symlink_to_songs_dir(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    (songs / "rootloop").symlink_to(".")

    def check():
        assert not any(r["source"].startswith("rootloop/") for r in project_mod.read_csv(proj / "catalog.csv"))
    return prepare_case(tmp, proj, code=0, rows={"rootloop": "duplicate", "singer0/song0.flac": "ok"}, check=check)


def dangling_symlink(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    (songs / "singer0" / "gone.flac").symlink_to(tmp / "nowhere.flac")
    (songs / "ghost").symlink_to(tmp / "no-such-singer")
    return prepare_case(tmp, proj, code=1, rows={"singer0/gone.flac": "unreadable", "ghost": "unreadable",
                                                 "singer0/song1.flac": "ok"})


def unreadable_folder(tmp, proj, trained):
    if os.geteuid() == 0:
        pytest.skip("root reads every folder whatever its mode")
    songs = songs_dir(tmp / "songs", singers=2)
    (songs / "singer1").chmod(0)
    return prepare_case(tmp, proj, code=1, rows={"singer1": "unreadable", "singer0/song0.flac": "ok"})


def meta_file_missing(tmp, proj, trained):
    songs_dir(tmp / "songs")
    return prepare_case(tmp, proj, "--meta", str(tmp / "missing.csv"), code=1,
                        error=("missing.csv does not exist",))


def unknown_gender_code(tmp, proj, trained):
    songs = songs_dir(tmp / "songs", singers=2)
    (songs / "singers.csv").write_text("singer,gender\nsinger0,femal\nsinger1,nonbinary\n")

    def check():
        assert {r["gender"] for r in project_mod.read_csv(proj / "catalog.csv")} == {"femal", "nonbinary"}
    return prepare_case(tmp, proj, code=0, output=("'femal'", "'nonbinary'", "not f/m"), check=check)


def conflicting_singer_rows(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    (songs / "singers.csv").write_text("singer,gender\nsinger0,f\nsinger0,m\n")
    return prepare_case(tmp, proj, code=1, error=("'singer0' is listed twice", "lines 2 and 3"))


def audio_without_singer_folders(tmp, proj, trained):
    songs = tmp / "songs"
    songs.mkdir()
    sf.write(songs / "a.flac", voice(5, SR), SR)
    sf.write(songs / "b.flac", voice(5, SR, seed=1), SR)

    def check():
        assert not (proj / "catalog.csv").exists()
    return prepare_case(tmp, proj, code=1, error=("no songs in singer folders", "2 audio files lie directly"),
                        check=check)


def loose_file_beside_singers(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    sf.write(songs / "loose.flac", voice(5, SR), SR)
    return prepare_case(tmp, proj, code=1, rows={"loose.flac": "no_singer", "singer0/song0.flac": "ok"})


def one_song_two_formats(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    sf.write(songs / "singer0" / "song0.wav", voice(5, SR), SR)
    return prepare_case(tmp, proj, code=0, rows={"singer0/song0.wav": "duplicate", "singer0/song0.flac": "ok"})


def prepare_given_a_file(tmp, proj, trained):
    songs = songs_dir(tmp / "songs")
    return Case(["prepare", str(songs / "singer0/song0.flac"), "-p", str(proj)],
                Expect(1, error=("song0.flac is a file, not a folder",)))


def project_under_a_file(tmp, proj, trained):
    songs_dir(tmp / "songs")
    (tmp / "afile").write_text("x")
    return Case(["prepare", str(tmp / "songs"), "-p", str(tmp / "afile" / "proj")],
                Expect(1, error=("cannot write", "afile")))


def project_not_writable(tmp, proj, trained):
    songs_dir(tmp / "songs")
    ro = tmp / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
    elif subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                        capture_output=True).returncode != 0:
        pytest.skip("running as root and cannot mount a read-only tmpfs: no way to deny a write here")
    return Case(["prepare", str(tmp / "songs"), "-p", str(ro)], Expect(1, error=("cannot write", str(ro))))


def recommend_silence(tmp, proj, trained):
    t = copy_trained(trained, tmp)
    sf.write(tmp / "silence.wav", np.zeros(SR * 10, dtype=np.float32), SR)
    return Case(["recommend", str(tmp / "silence.wav"), "-p", str(t)], Expect(1, error=("no voice in the query",)))


def recommend_a_folder(tmp, proj, trained):
    t = copy_trained(trained, tmp)
    return Case(["recommend", str(tmp), "-p", str(t)], Expect(1, error=("is a folder", "one audio file")))


def damaged(rel: str, how: Callable[[Path], None], command: list[str], *needles: str, absent: tuple = ()):
    def case(tmp, proj, trained):
        t = copy_trained(trained, tmp)
        how(t / rel)
        args = [a.format(tmp=tmp) for a in command]
        return Case([*args, "-p", str(t)], Expect(1, error=needles, absent=absent))
    return case


def object_array(path: Path) -> None:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def evil_pickle(path: Path) -> None:
    import torch

    torch.save({"format_version": 1, "x": Path("/")}, path)  # any object that is not plain data


def catalog_without(column: str, command: str):
    def case(tmp, proj, trained):
        t = copy_trained(trained, tmp)
        rows = project_mod.read_csv(t / "catalog.csv")
        fields = [k for k in rows[0] if k != column]
        project_mod.write_csv(t / "catalog.csv", rows, fields)
        before = {p.name: p.read_bytes() for p in (t / "embeddings").iterdir()}

        def check():
            assert {p.name: p.read_bytes() for p in (t / "embeddings").iterdir()} == before
        return Case([command, "-p", str(t)], Expect(1, error=(f"no {column} column", "vocal prepare"), check=check))
    return case


def project_option_before_command(tmp, proj, trained):
    t = copy_trained(trained, tmp)
    return Case(["-p", str(t), "index"], Expect(0, output=("indexed",)))


def quiet_after_command(tmp, proj, trained):
    t = copy_trained(trained, tmp)
    return Case(["index", "-p", str(t), "-q"], Expect(0, absent=("indexed",)))


def version(tmp, proj, trained):
    import vocalcli

    return Case(["--version"], Expect(0, output=(vocalcli.__version__,)))


def umask_is_honoured(tmp, proj, trained):
    songs_dir(tmp / "songs")

    def check():
        for f in (proj / "catalog.csv", proj / "prepare.json", next((proj / "mels").iterdir())):
            assert f.stat().st_mode & 0o777 == 0o644, f
    return prepare_case(tmp, proj, code=0, check=check)


CASES: dict[str, Callable[..., Case]] = {
    # 5, 7: names and encodings
    "non-utf8-file-name": non_utf8_file_name,
    "singers-csv-bom": singers_csv_with_bom,
    "singers-csv-latin1": singers_csv_latin1,
    "vocal-yaml-latin1": vocal_yaml_latin1,
    # 8: values that passed validation and failed later
    "seed-negative": yaml_case("seed: -1\n", "seed", "2**32"),
    "seed-too-big": yaml_case("seed: 100000000000000000000000\n", "seed", "2**32"),
    "end-s-inf": yaml_case("audio:\n  end_s: .inf\n", "audio.end_s", "finite"),
    "silence-db-nan": yaml_case("prepare:\n  silence_db: .nan\n", "prepare.silence_db", "finite"),
    # 10, 12: layout
    "symlink-to-songs-dir": symlink_to_songs_dir,
    "dangling-symlinks": dangling_symlink,
    "unreadable-folder": unreadable_folder,
    "audio-without-singer-folders": audio_without_singer_folders,
    "loose-file-beside-singers": loose_file_beside_singers,
    "one-song-two-formats": one_song_two_formats,
    # 11: singers.csv
    "meta-file-missing": meta_file_missing,
    "unknown-gender-code": unknown_gender_code,
    "conflicting-singer-rows": conflicting_singer_rows,
    # 6, 14: where things are
    "prepare-given-a-file": prepare_given_a_file,
    "project-under-a-file": project_under_a_file,
    "project-not-writable": project_not_writable,
    "recommend-a-folder": recommend_a_folder,
    # 13
    "recommend-silence": recommend_silence,
    # 9: damaged artefacts
    "index-json-truncated": damaged("index/index.json", truncate, ["recommend", "--song-id", "s0_0"],
                                    "index.json is damaged", "vocal index"),
    "meta-json-truncated": damaged("embeddings/meta.json", truncate, ["index"], "meta.json is damaged",
                                   "vocal embed"),
    "melody-npy-truncated": damaged("embeddings/melody.npy", truncate, ["index"], "melody.npy is damaged",
                                    "vocal embed"),
    "timbre-npy-object-dtype": damaged("embeddings/timbre.npy", object_array, ["plot", "-o", "{tmp}/map.png"],
                                       "timbre.npy is damaged", "vocal embed"),
    "songs-ann-empty": damaged("index/songs.ann", lambda p: p.write_bytes(b""), ["recommend", "--song-id", "s0_0"],
                               "songs.ann does not match", "vocal index"),
    "songs-ann-truncated": damaged("index/songs.ann", truncate, ["recommend", "--singer", "singer0"],
                                   "songs.ann does not match", "vocal index"),
    "catalog-without-singer": catalog_without("singer", "embed"),
    "catalog-without-status": catalog_without("status", "balance"),
    # 16: checkpoints
    "checkpoint-pickle": damaged("checkpoints/tcae/best.pt", evil_pickle, ["embed"], "is not a vocal checkpoint",
                                 "was not loaded", absent=("weights_only",)),
    "checkpoint-truncated": damaged("checkpoints/contrastive/best.pt", truncate, ["embed"],
                                    "not a readable vocal checkpoint", "train again"),
    # 15: the CLI itself
    "project-option-before-command": project_option_before_command,
    "quiet-after-command": quiet_after_command,
    "version": version,
    "umask-honoured": umask_is_honoured,
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, tmp_path: Path, tiny_project: Path, trained_tiny: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    old_mask = os.umask(0o022)
    try:
        case = CASES[name](tmp_path, tiny_project, trained_tiny)
        for k, v in case.env.items():
            monkeypatch.setenv(k, v)
        r = runner.invoke(app, case.args)
    finally:
        os.umask(old_mask)
        if (tmp_path / "ro").is_mount():
            subprocess.run(["umount", str(tmp_path / "ro")], check=False)
    e = case.expect
    out = r.output
    assert r.exit_code == e.code, out
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    if e.error:
        assert len(errors) == 1, out  # exactly one line, not wrapped
        for needle in e.error:
            assert needle in errors[0], errors[0]
    else:
        assert not errors, out
    for needle in e.output:
        assert needle in out, out
    for needle in e.absent:
        assert needle not in out, out
    if e.rows:
        rows = {r["source"]: r for r in project_mod.read_csv(Path(case.args[3]) / "catalog.csv")}
        for source, status in e.rows.items():
            assert rows[source]["status"] == status, (source, rows.get(source))
            assert status == "ok" or rows[source]["reason"], rows[source]
    if e.check:
        e.check()


def test_no_traceback_reaches_the_user_even_from_a_subprocess(tmp_path: Path) -> None:
    """The installed entry point, not only CliRunner: a bad vocal.yaml is one line on stderr, exit 1."""
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "vocal.yaml").write_text("seed: -1\n")
    r = subprocess.run([sys.executable, "-m", "vocalcli", "balance", "-p", str(proj)], capture_output=True,
                       text=True, env={**os.environ, "COLUMNS": "60"})
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error:") and "'seed'" in r.stderr, r.stderr
