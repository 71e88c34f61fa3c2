"""Seed-001 write-back into a user's SQLite experiments database: dry run by default, the
seed's columns added in one transaction, nothing else changed, idempotent, all or nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from research.attribution import experiments_db
from research.config import PATHS
from research.testing.cli import CliResult, run_cli

SEED = [c for c, _ in experiments_db.SEED_COLUMNS]


def _run(*args: str) -> CliResult:
    return run_cli("attribute", "experiments", "--no-hmm", *args)


@pytest.fixture()
def user_db(tmp_path: Path) -> Path:
    """The sample experiments in a SQLite file, with a column of the user's own."""
    frame = pd.read_csv(PATHS.sample / "experiments.csv").assign(notes="kept as is")
    path = tmp_path / "experiments.db"
    with sqlite3.connect(path) as con:
        frame.to_sql("experiments", con, index=False)
    return path


def _market_and_labels() -> tuple[object, pd.DataFrame]:
    """The default market data (embedded bars, VIX and its proxy) and its vix_trend labels."""
    from research.data.overview import load_market
    from research.regimes import classify, load_ruleset

    market = load_market()
    return market, classify("vix_trend", market.bars, market.iv, load_ruleset(None))


def _dump(path: Path, columns: str = "*") -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT {columns} FROM experiments ORDER BY rowid").fetchall()


def test_dry_run_then_write_then_nothing_to_change(user_db: Path) -> None:
    before_bytes = user_db.read_bytes()
    before = _dump(user_db)
    n = len(before)
    res = _run("--db", str(user_db))
    assert res.returncode == 0, res.stderr
    assert "dry run, would: " in res.stdout and f"on {n} experiments" in res.stdout
    assert user_db.read_bytes() == before_bytes  # a dry run writes nothing
    res = _run("--db", str(user_db), "--write")
    assert res.returncode == 0, res.stderr
    assert f"updated {n} rows of experiments" in res.stdout
    with sqlite3.connect(user_db) as con:
        info = {r[1]: (r[2], r[3]) for r in con.execute("PRAGMA table_info(experiments)")}
        (sql,) = con.execute("SELECT sql FROM sqlite_master WHERE name = 'experiments'").fetchone()
    # --no-hmm: only the columns this run computed are added (before, the avg_hmm_* columns were
    # added too and left null), nullable, each marked as the lab's own
    assert {c: info.get(c) for c in SEED} == {
        "dominant_regime": ("TEXT", 0),
        "avg_vix": ("REAL", 0),
        "avg_hmm_trend": None,
        "avg_hmm_vol": None,
        "regime_breakdown": ("TEXT", 0),
    }  # nullable columns only
    for col in ("dominant_regime", "avg_vix", "regime_breakdown"):
        assert f'"{col}" {info[col][0]} {experiments_db.LAB_MARK}' in sql
    assert "avg_hmm_trend, avg_hmm_vol not computed in this run: left as they are" in res.stdout
    n_old = len(before[0])
    after = _dump(user_db)
    assert [row[:n_old] for row in after] == before  # every existing value unchanged
    row = dict(zip([*info], after[0], strict=True))
    # derived here from the market data over the first experiment's window: the IV of its
    # symbol (VIX points; the labelled proxy before 2014) averaged over [start, end], and the
    # vix_trend regime most of its labelled days carried
    market, labels = _market_and_labels()
    start, end, symbol = pd.Timestamp(row["start"]), pd.Timestamp(row["end"]), row["symbol"]
    iv = market.iv[(market.iv["symbol"] == symbol) & market.iv["date"].between(start, end)]
    assert row["avg_vix"] == pytest.approx(100 * iv["iv"].mean(), rel=1e-12)
    days = labels[(labels["symbol"] == symbol) & labels["date"].between(start, end)]
    counts = days["regime"].dropna().value_counts()
    assert row["dominant_regime"] == counts.index[0] and counts.iloc[0] > counts.iloc[1]
    res = _run("--db", str(user_db), "--write")
    assert res.returncode == 0 and "nothing to change" in res.stdout
    assert "updated 0 rows" in res.stdout and _dump(user_db) == after


def test_a_failed_write_leaves_the_file_as_it_was(user_db: Path) -> None:
    # every lab column has a value (a column this run computed nothing for is not added)
    tagged = pd.DataFrame({"experiment_id": ["EXP-0001"], **{c: [0.5] for c in SEED}}).assign(
        dominant_regime=[["not", "bindable"]]
    )
    plan = experiments_db.plan(user_db, tagged)
    assert plan.add_columns == tuple(SEED)
    before = _dump(user_db)
    # one line naming the file and table (before: the raw sqlite3 error)
    with pytest.raises(experiments_db.DatabaseError, match="rolled back, nothing was written") as e:
        experiments_db.apply(plan)
    assert str(user_db) in str(e.value) and "'experiments'" in str(e.value)
    assert isinstance(e.value.__cause__, sqlite3.Error)
    with sqlite3.connect(user_db) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(experiments)")]
    assert not set(SEED) & set(cols) and _dump(user_db) == before  # rolled back, ALTERs too


def test_bad_databases_and_options(tmp_path: Path, user_db: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE runs (id TEXT)")
        con.execute("CREATE TABLE more (id TEXT)")
    res = _run("--db", str(other))
    assert res.returncode == 1 and "other.db" in res.stderr and "experiments" in res.stderr
    res = _run("--write")
    assert res.returncode == 1 and "--write needs --db" in res.stderr
    res = _run("--db", str(user_db), "--experiments", str(PATHS.sample / "experiments.csv"))
    assert res.returncode == 1 and "not both" in res.stderr
    res = _run("--db", str(user_db), "--metric", "sortino")
    assert res.returncode == 1 and "unknown metric 'sortino'" in res.stderr
    res = _run("--grouping", "start_regime")
    assert res.returncode == 1 and res.stderr.strip() == (
        "error: --grouping must be entry_regime or dominant_regime, got 'start_regime'"
    )


def test_learned_configs_file(tmp_path: Path) -> None:
    """The exported file against an independent pandas computation on the sample: per entry
    regime (the vix_trend label on the last labelled day on or before each start), the
    configuration with the highest mean pnl_pct among those with >= 5 experiments there; the
    selector serves it, or the default where it loses money."""
    import json

    from research.attribution.selector import RegimeConfigSelector

    out = tmp_path / "learned.json"
    res = _run("--learned-out", str(out))
    assert res.returncode == 0, res.stderr
    learned = json.loads(out.read_text())
    assert learned["regime_model"] == "vix_trend" and learned["sample"].startswith("in-sample")
    assert learned["grouping"] == "entry_regime"
    exp = pd.read_csv(PATHS.sample / "experiments.csv", parse_dates=["start", "end"])
    _, labels = _market_and_labels()
    known = labels.dropna(subset=["regime"]).sort_values("date")
    known = known.assign(date=known["date"].astype("datetime64[ns]"))
    exp = exp.assign(start=exp["start"].astype("datetime64[ns]"))
    entry = pd.merge_asof(
        exp.sort_values("start").rename(columns={"start": "date"}),
        known[["date", "symbol", "regime"]],
        on="date",
        by="symbol",
        direction="backward",
    ).dropna(subset=["regime"])
    counts = entry.groupby(["regime", "config_name"]).size()
    means = entry.groupby(["regime", "config_name"])["pnl_pct"].mean()[counts >= 5]
    want = {
        regime: part.droplevel(0).sort_values(ascending=False).index[0]
        for regime, part in means.groupby(level=0)
        if len(part) >= 2
    }
    assert {r: v["config"] for r, v in learned["regimes"].items()} == want
    sel = RegimeConfigSelector(out)
    for regime, cfg in learned["regimes"].items():
        losing = bool(means[(regime, cfg["config"])] < 0)
        assert cfg["evidence"]["loses_money"] is losing
        assert cfg["served"] == ("stand aside" if losing else "learned")
        # a losing regime: every configuration compared there lost, so the selector stands aside
        assert sel.config_for(regime) == (None if losing else cfg["params"])
        assert cfg["evidence"]["p_vs_runner_up"] >= cfg["evidence"]["min_p"]
        # how many configurations were compared there and how many lost money, recomputed
        compared = means.loc[regime]
        assert cfg["evidence"]["configs"] == len(compared) == 16
        assert cfg["evidence"]["configs_losing"] == int((compared < 0).sum())
        # the regime's windows joined by hand: sorted by start, a window starting more than
        # 730 days after the block's last end (two full years between them) starts a new block
        windows = entry.loc[
            (entry["regime"] == regime) & (entry["config_name"] == cfg["config"]),
            ["date", "end"],
        ].sort_values("date")
        blocks, reach = 0, None
        for start, end in zip(windows["date"], windows["end"], strict=True):
            if reach is None or (start - reach).days > 730:
                blocks, reach = blocks + 1, end
            else:
                reach = max(reach, end)
        assert cfg["evidence"]["blocks"] == blocks, regime
        # 2 or 3 independent blocks (6 are needed at 5%): the test cannot reject, and says so
        assert blocks in (2, 3) and cfg["evidence"]["tested"] is False
        assert cfg["evidence"]["evidence_text"] == (
            f"untested: cannot reject with {blocks} independent blocks (minimum p "
            f"{2 / 2**blocks:.3g}); a verdict needs at least 6 blocks, i.e. at least 22 years of "
            "2-year windows two years apart"
        )
    assert {r: v["evidence"]["blocks"] for r, v in learned["regimes"].items()} == {
        "LOW_VOL_BULLISH": 2,  # 4 blocks under the former one-year rule
        "NORMAL_VOL_NEUTRAL": 3,  # 3 under the one-year rule, 4 joining overlapping windows only
    }
    assert sel.config_for("NO_SUCH_REGIME") == learned["default"]["params"]


def test_the_sample_can_never_reject_and_its_persistence() -> None:
    """The sample's 20 years (1999-2018) of two-year windows fit at most 5 blocks two years
    apart (start years 1999, 2003, ..., 2015), so no comparison on it can reject at 5 %
    (minimum p 2 / 2**5 = 0.0625). Its window differences (240 configuration-pair x symbol
    series, 19 windows each) have median lag-1 / lag-2 autocorrelations 0.59 / 0.16 (pandas'
    autocorr, by hand), which the simulation matches at phi of about 0.33 / 0.5."""
    import itertools

    import numpy as np

    from research.attribution import experiments as ex

    exp = pd.read_csv(PATHS.sample / "experiments.csv", parse_dates=["start", "end"])
    windows = exp[["start", "end"]].drop_duplicates().sort_values("start")
    chosen, reach = [], None  # greedily: the earliest window two full years after the last
    for start, end in zip(windows["start"], windows["end"], strict=True):
        if reach is None or (start - reach).days > 730:
            chosen.append(start.year)
            reach = end
    assert chosen == [1999, 2003, 2007, 2011, 2015]
    picked = windows[windows["start"].dt.year.isin(chosen)]
    blocks = ex.overlap_blocks(picked["start"], picked["end"])
    assert blocks.max() + 1 == 5 < ex.blocks_needed(0.05) == 6
    assert 2 / 2**5 == 0.0625 > 0.05
    lag1, lag2 = [], []
    for _, part in exp.groupby("symbol"):
        wide = part.pivot(index="start", columns="config_name", values="pnl_pct")
        for a, b in itertools.combinations(wide.columns, 2):
            d = wide[a] - wide[b]
            lag1.append(d.autocorr(1))
            lag2.append(d.autocorr(2))
    w = ex.window_persistence(exp)
    assert (w.series, w.windows) == (len(lag1), 19) == (240, 19)
    assert w.acf1 == pytest.approx(np.median(lag1)) and round(w.acf1, 2) == 0.59
    assert w.acf2 == pytest.approx(np.median(lag2)) and round(w.acf2, 2) == 0.16
    assert 0.28 < w.phi < 0.38 and 0.45 < w.phi_lag2 < 0.55, w
    # at those persistences blocks two years apart correlate below 0.1 (two-year windows)
    assert max(p**3 * (1 + p) / 2 for p in (w.phi, w.phi_lag2)) < 0.1
