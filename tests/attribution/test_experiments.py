"""Experiment attribution (seed 001): tagging by hand, best config per regime with the
runner-up test, the learned-config file, and the dependency-light selector."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.attribution import experiments as ex
from research.attribution.selector import RegimeConfigSelector, vix_trend_regime

DATES = pd.bdate_range("2021-01-04", periods=20)


def _labels() -> pd.DataFrame:
    regimes = ["A"] * 12 + ["B"] * 8
    return pd.DataFrame({"date": DATES, "symbol": "SPX", "regime": regimes})


def _exp(eid: str, start: int, end: int, config: str, pnl: float, **extra: object) -> dict:
    return {
        "experiment_id": eid,
        "start": DATES[start],
        "end": DATES[end],
        "symbol": "SPX",
        "config_name": config,
        "param_stop": {"c1": 1.0, "c2": 2.0, "c3": 3.0}[config],
        "pnl_pct": pnl,
        "win_rate": 0.6,
        "trades": 10,
        **extra,
    }


def test_tagging_by_hand() -> None:
    e = pd.DataFrame([_exp("E1", 0, 9, "c1", 1.0), _exp("E2", 8, 19, "c1", 1.0)])
    iv = pd.DataFrame({"date": DATES, "symbol": "SPX", "iv": np.linspace(0.10, 0.29, 20)})
    markov = pd.DataFrame(
        {
            "date": DATES,
            "symbol": "SPX",
            "trend_dim": ["up"] * 10 + ["down"] * 10,
            "prob_state0": 0.75,
            "prob_state1": 0.25,
        }
    )
    t = ex.tag_experiments(e, _labels(), iv, markov).set_index("experiment_id")
    assert t.loc["E1", "dominant_regime"] == "A" and t.loc["E1", "regime_days"] == 10
    assert json.loads(t.loc["E1", "regime_breakdown"]) == {"A": 1.0}
    # E2: days 8..19 = 4 of A, 8 of B
    assert t.loc["E2", "dominant_regime"] == "B"
    assert json.loads(t.loc["E2", "regime_breakdown"]) == {"A": 0.3333, "B": 0.6667}
    assert t.loc["E1", "avg_vix"] == pytest.approx(np.linspace(10, 29, 20)[:10].mean())
    assert t.loc["E2", "avg_hmm_trend"] == pytest.approx((2 * 1 - 10) / 12)
    assert t.loc["E1", "avg_hmm_vol"] == pytest.approx(0.25)


def test_experiments_outside_the_data_are_named() -> None:
    e = pd.DataFrame([_exp("E9", 0, 3, "c1", 1.0)]).assign(
        start=pd.Timestamp("2030-01-01"), end=pd.Timestamp("2030-06-30")
    )
    with pytest.raises(ValueError, match=r"1 experiments have no labelled market day.*E9"):
        ex.tag_experiments(e, _labels())


def _grid() -> pd.DataFrame:
    """Six windows in regime A: c1 beats c2 on every window by 2, c3 has too few runs."""
    rows = []
    for w in range(6):
        rows.append(_exp(f"a{w}", w, w, "c1", 10.0 + w))
        rows.append(_exp(f"b{w}", w, w, "c2", 8.0 + w))
    rows.append(_exp("c0", 0, 0, "c3", 99.0))
    return ex.tag_experiments(pd.DataFrame(rows), _labels())


def test_best_by_regime_and_the_runner_up_test() -> None:
    best = ex.best_by_regime(_grid(), min_experiments=5, reps=2000)
    row = best.iloc[0]
    assert row["regime"] == "A" and row["best_config"] == "c1" and row["runner_up"] == "c2"
    assert row["metric_mean"] == pytest.approx(12.5) and row["experiments"] == 6
    assert row["diff_vs_runner_up"] == pytest.approx(2.0)
    # every paired difference is +2: no resample reaches 0
    assert row["p_vs_runner_up"] == pytest.approx(1 / 2001) and row["beats_runner_up"]
    assert 10.0 <= row["ci_low"] <= 12.5 <= row["ci_high"] <= 15.0
    assert row["key_settings"] == "stop=1"  # c3's 99 % never counts: one experiment only


def test_no_difference_is_not_called_a_win() -> None:
    g = _grid()
    g.loc[g["config_name"] == "c2", "pnl_pct"] = g.loc[
        g["config_name"] == "c1", "pnl_pct"
    ].to_numpy() + np.array([-3, 3, -3, 3, -3, 2.5])
    best = ex.best_by_regime(g, min_experiments=5, reps=2000)
    assert not best.iloc[0]["beats_runner_up"] and best.iloc[0]["p_vs_runner_up"] > 0.2


def test_bad_input() -> None:
    g = _grid()
    with pytest.raises(ValueError, match="unknown metric 'sortino'"):
        ex.best_by_regime(g, metric="sortino")
    with pytest.raises(ValueError, match=r"1 experiments have zero trades \(e.g. \['a0'\]\)"):
        ex.best_by_regime(g.assign(trades=np.where(g["experiment_id"] == "a0", 0, 10)))
    with pytest.raises(ValueError, match="no regime has two configurations with enough"):
        ex.best_by_regime(g, min_experiments=7)


def test_learned_configs_and_the_selector(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    g = _grid()
    best = ex.best_by_regime(g, min_experiments=5, reps=500)
    learned = ex.learned_configs(g, best, default="c2", model="toy")
    assert learned["regimes"]["A"]["params"] == {"stop": 1.0}
    assert learned["regimes"]["A"]["source_experiments"] == [f"a{w}" for w in range(6)]
    assert learned["default"] == {"config": "c2", "params": {"stop": 2.0}}
    assert learned["regimes"]["A"]["evidence"]["loses_money"] is False  # mean 12.5
    # the same grid shifted down by 20: c1 is still best in A, but loses money on average
    g_losing = g.assign(pnl_pct=g["pnl_pct"] - 20)
    best_losing = ex.best_by_regime(g_losing, min_experiments=5, reps=500)
    losing = ex.learned_configs(g_losing, best_losing, default="c2", model="toy")
    assert losing["regimes"]["A"]["config"] == "c1"
    assert losing["regimes"]["A"]["evidence"]["mean"] == pytest.approx(-7.5)
    assert losing["regimes"]["A"]["evidence"]["loses_money"] is True
    path = tmp_path / "learned.json"
    path.write_text(json.dumps(learned, default=float))
    sel = RegimeConfigSelector(path)
    sel.regime_configs["LOW_VOL_BULLISH"] = {"stop": 7.0}
    rising = list(np.linspace(100, 110, 50))
    with caplog.at_level(logging.INFO, logger="research.regime_selector"):
        assert sel.get_config(13.0, rising) == {"stop": 7.0}
        assert sel.get_config(13.5, rising) == {"stop": 7.0}  # same regime: no new log line
        assert sel.get_config(40.0, rising) == {"stop": 2.0}  # nothing learned: the default
    switches = [r.getMessage() for r in caplog.records]
    assert switches == [
        "[REGIME] Changed: None -> LOW_VOL_BULLISH (learned config)",
        "[REGIME] Changed: LOW_VOL_BULLISH -> EXTREME_VOL_BULLISH (default config)",
    ]


@pytest.mark.parametrize(
    ("vix", "last", "want"),
    [
        (11.99, 100.0, "ULTRA_LOW_VOL_NEUTRAL"),
        (12.0, 103.0, "LOW_VOL_BULLISH"),  # on an edge: the bucket above
        (35.0, 96.0, "EXTREME_VOL_BEARISH"),
        (20.0, 101.9, "ELEVATED_VOL_NEUTRAL"),
    ],
)
def test_vix_trend_regime_by_hand(vix: float, last: float, want: str) -> None:
    closes = [100.0] * 49 + [last]  # SMA = (4900 + last) / 50
    assert vix_trend_regime(vix, closes) == want


def test_the_selector_imports_without_pandas() -> None:
    code = (
        "import sys; import research.attribution.selector as s; "
        "bad = [m for m in ('pandas', 'numpy', 'plotly', 'matplotlib') if m in sys.modules]; "
        "print(bad)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr
