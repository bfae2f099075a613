"""`vocal balance`: exactly N per singer, replacement of short songs, drops, splits, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vocalcli import catalog
from vocalcli import project as project_mod
from vocalcli.balance import balance, split_sizes
from vocalcli.cli import app
from vocalcli.config import BalanceConfig
from vocalcli.errors import VocalError


def fake_catalog(counts: dict[str, tuple[int, int]]) -> list[dict[str, str]]:
    """{singer: (ok songs, too-short songs)} -> catalog rows."""
    rows = []
    for singer, (ok, short) in counts.items():
        for i in range(ok + short):
            rows.append({"song_id": f"{singer}_{i:03d}", "singer": singer,
                         "status": "ok" if i >= short else "too_short"})
    return rows


def test_exactly_n_with_replacement_and_drops() -> None:
    cat = fake_catalog({"a": (30, 0), "b": (31, 5), "c": (29, 3), "d": (40, 0)})
    res = balance(cat, BalanceConfig(), seed=0)
    per = {s: [r for r in res.rows if r["singer"] == s] for s in res.kept_singers}
    assert res.kept_singers == ["a", "b", "d"] and all(len(v) == 30 for v in per.values())
    assert [d.singer for d in res.dropped] == ["c"] and res.dropped[0].eligible == 29
    assert res.dropped[0].reasons == {"too_short": 3}
    assert res.replaced == {"b": 5}
    statuses = {r["song_id"]: r["status"] for r in cat}
    assert all(statuses[r["song_id"]] == "ok" for r in res.rows)
    for rows in per.values():  # every singer in every split, in the configured proportions
        splits = [r["split"] for r in rows]
        assert (splits.count("train"), splits.count("val"), splits.count("test")) == (21, 4, 5) or \
            (splits.count("train"), splits.count("val"), splits.count("test")) == (21, 5, 4)


def test_rows_without_a_singer_are_neither_kept_nor_dropped() -> None:
    """prepare lists loose files (no singer folder) in the catalog; they are not a blank 'dropped singer'."""
    cat = fake_catalog({"a": (30, 0)}) + [{"song_id": "loose", "singer": "", "status": "no_singer"}]
    res = balance(cat, BalanceConfig(), seed=0)
    assert res.kept_singers == ["a"] and res.dropped == []


def test_deterministic_and_seed_dependent() -> None:
    cat = fake_catalog({"a": (50, 0), "b": (45, 2)})
    r1, r2 = balance(cat, BalanceConfig(), seed=0), balance(cat, BalanceConfig(), seed=0)
    assert r1.rows == r2.rows
    assert balance(cat, BalanceConfig(), seed=1).rows != r1.rows
    # adding a singer does not change another singer's choice
    r3 = balance(cat + fake_catalog({"z": (30, 0)}), BalanceConfig(), seed=0)
    assert [r for r in r3.rows if r["singer"] == "a"] == [r for r in r1.rows if r["singer"] == "a"]


def test_holdout_singers_are_all_test() -> None:
    cat = fake_catalog({s: (10, 0) for s in "abcde"})
    res = balance(cat, BalanceConfig(), seed=0, songs_per_singer=10, holdout_singers=2)
    assert len(res.holdout) == 2
    for s in res.holdout:
        assert {r["split"] for r in res.rows if r["singer"] == s} == {"test"}
    for s in set(res.kept_singers) - set(res.holdout):
        assert {r["split"] for r in res.rows if r["singer"] == s} == {"train", "val", "test"}


def test_holdout_by_name_and_an_unknown_name() -> None:
    cat = fake_catalog({s: (10, 0) for s in "abcde"})
    res = balance(cat, BalanceConfig(holdout=["c"]), seed=0, songs_per_singer=10)
    assert res.holdout == ["c"] and {r["split"] for r in res.rows if r["singer"] == "c"} == {"test"}
    res = balance(cat, BalanceConfig(holdout=["c"]), seed=0, songs_per_singer=10, holdout=["a", "e"])
    assert res.holdout == ["a", "e"]  # the command line wins over vocal.yaml
    with pytest.raises(VocalError, match="'z'.*a, b, c, d, e"):
        balance(cat, BalanceConfig(), seed=0, songs_per_singer=10, holdout=["z"])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 30, 31])
def test_split_sizes_sum_and_nonempty(n: int) -> None:
    sizes = split_sizes(n, 0.7, 0.15, 0.15)
    assert sum(sizes) == n
    if n >= 3:
        assert min(sizes) >= 1


def test_balance_cli(tmp_path: Path) -> None:
    project_mod.init(tmp_path)
    rows = [{**r, "source": r["song_id"], "title": "", "mel": ""} for r in
            fake_catalog({"a": (4, 1), "b": (2, 0)})]
    catalog.write(tmp_path / "catalog.csv", rows)
    r = CliRunner().invoke(app, ["balance", "-p", str(tmp_path), "-n", "3", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["kept"] == ["a"] and out["dropped"][0]["singer"] == "b"
    assert len(project_mod.read_csv(tmp_path / "balanced.csv")) == 3
    r = CliRunner().invoke(app, ["balance", "-p", str(tmp_path), "-n", "10"])
    assert r.exit_code == 1 and "--songs-per-singer" in r.output


def test_a_command_is_a_plain_function_that_runs_without_the_app(tmp_path: Path) -> None:
    """vocalcli.cli registers module-level functions: one can be mounted alone (no error boundary, so a
    library error surfaces as the exception itself)."""
    import typer

    from vocalcli.cli.prepare import balance as balance_cmd
    from vocalcli.errors import MissingArtifact

    solo = typer.Typer()
    solo.command()(balance_cmd)
    project_mod.init(tmp_path)
    r = CliRunner().invoke(solo, ["-p", str(tmp_path)])
    assert isinstance(r.exception, MissingArtifact) and "vocal prepare" in str(r.exception)
