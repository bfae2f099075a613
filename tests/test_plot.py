"""The embedding map: a valid PNG of the requested size, chosen singers, colourings, errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_index import make_use_project

from vocalcli.errors import VocalError
from vocalcli.plot import plot_map

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; asserts the file is a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_default_map_is_a_png_of_the_requested_size(tmp_path):
    proj = make_use_project(tmp_path / "p")
    out = tmp_path / "map.png"
    res = plot_map(proj, proj.load_config(), out, width=640, height=480)
    assert png_size(out) == (640, 480)
    assert len(res.singers) == 4 and res.n_songs == 24 and res.method == "tsne"
    assert res.singers == ["ann", "bea", "cid", "dan"]  # ties in song count broken by name


@pytest.mark.parametrize("color", ["gender", "genre"])
def test_colourings_and_melody_pca(tmp_path, color):
    proj = make_use_project(tmp_path / "p")
    out = tmp_path / f"{color}.png"
    res = plot_map(proj, proj.load_config(), out, singers=["ann", "unk"], color=color, embedding="melody",
                   method="pca", width=300, height=200)
    assert png_size(out) == (300, 200) and res.n_songs == 12 and res.method == "pca"


def test_errors(tmp_path):
    proj = make_use_project(tmp_path / "p")
    cfg = proj.load_config()
    with pytest.raises(VocalError, match="nobody"):
        plot_map(proj, cfg, tmp_path / "x.png", singers=["nobody"])
    with pytest.raises(VocalError, match="--color"):
        plot_map(proj, cfg, tmp_path / "x.png", color="mood")
    assert not (tmp_path / "x.png").exists()
