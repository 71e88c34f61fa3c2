"""Attribution from files, for the command line and the notebooks: load the records and the
market data the way every command does, label regimes, prepare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research.attribution.signals import PreparedSignals, prepare
from research.attribution.tunes import DriftResult, UpliftResult
from research.attribution.tunes_db import PopulationReport
from research.data.overview import MarketData

__all__ = ["SignalStudy", "load_signal_study"]


@dataclass(frozen=True)
class SignalStudy:
    """Prepared signals and the market data they were joined to."""

    prepared: PreparedSignals
    market: MarketData
    signals_source: str
    model: str

    @property
    def regimes(self) -> list[str]:
        """The regimes present, in the model's order (low risk first), others after."""
        from research.regimes import get_model

        present = set(self.prepared.usable["regime"])
        order = [r for r in get_model(self.model).labels if r in present]
        return order + sorted(present - set(order))

    def summary(
        self, table: pd.DataFrame, finding: Mapping[str, object], decay: pd.DataFrame
    ) -> dict[str, object]:
        """The notebook's machine-readable summary."""
        f = self.prepared.usable
        return {
            "signals": self.signals_source,
            "records_used": len(f),
            "agents": sorted(set(f["agent"])),
            "regime_model": self.prepared.regime_model,
            "sample": "in-sample",
            "finding": dict(finding),
            "per_agent_regime": table.to_dict(orient="records"),
            "decay": decay.to_dict(orient="records"),
            "notes": [*self.market.notes, *self.prepared.notes()],
        }

    def about(self) -> str:
        """The data paragraph for a page: the records, then the market data."""
        f = self.prepared.frame
        model = self.prepared.regime_model
        regimes = (
            f"regimes from the records and, where they carry none, the `{model}` model"
            if model
            else "regimes as the records give them"
        )
        return (
            f"**Signals:** {len(f):,} records of {f['agent'].nunique()} agents in "
            f"{f['cluster'].nunique()} clusters on {', '.join(sorted(set(f['symbol'])))}, "
            f"{f['asof'].min().date()} to {f['asof'].max().date()}, from {self.signals_source}; "
            f"{regimes}. {self.market.about()}"
        )


def load_signal_study(
    signals_path: str | Path | None = None,
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    iv_from: Mapping[str, str] | None = None,
    model: str = "bull_bear_vol",
    ruleset_path: str | Path | None = None,
) -> SignalStudy:
    """Signals (default ``data/sample/signals.csv``) joined to the bars of their symbols and to
    the regimes of ``model`` (used only for records without a regime).

    Returns
    -------
    SignalStudy
    """
    from research.config import PATHS
    from research.data.loaders import load
    from research.data.overview import load_market
    from research.regimes import classify, load_ruleset

    path = signals_path if signals_path is not None else PATHS.sample / "signals.csv"
    from research.data import market as market_data

    records = load("signals", path)
    available = set(
        market_data.DEFAULT_SYMBOLS
        if bars_path is None
        else market_data.load_bars(bars_path)["symbol"]
    )
    symbols = sorted(set(records["symbol"]) & available)
    if not symbols:
        raise ValueError(
            f"{path}: column 'symbol': no symbol of the signals {sorted(set(records['symbol']))}"
            f" has bars (bars: {sorted(available)})"
        )
    market = load_market(bars_path, iv_path, symbols=symbols, iv_from=iv_from)
    labels = classify(model, market.bars, market.iv, load_ruleset(ruleset_path))
    prepared = prepare(records, market.bars, labels, source=str(path))
    shown = (
        "the sample signals (`data/sample/signals.csv`)" if signals_path is None else f"`{path}`"
    )
    return SignalStudy(prepared, market, shown, model)


@dataclass(frozen=True)
class ExperimentStudy:
    """Experiments tagged with their regimes, and where they came from."""

    tagged: pd.DataFrame
    market: MarketData
    source: str
    model: str


def load_experiment_study(
    experiments_path: str | Path | None = None,
    *,
    table: str | None = None,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    model: str = "vix_trend",
    markov: bool = True,
    ruleset_path: str | Path | None = None,
) -> ExperimentStudy:
    """Experiments (default ``data/sample/experiments.csv``; CSV, Parquet, ... or the user's
    SQLite file with ``table``) tagged by ``research.attribution.experiments.tag_experiments``
    with the regimes of ``model`` and, with ``markov``, the Markov model's trend and vol.

    Returns
    -------
    ExperimentStudy
    """
    from research.attribution.experiments import tag_experiments
    from research.config import PATHS
    from research.data.loaders import load
    from research.data.overview import load_market
    from research.regimes import classify, load_ruleset

    path = experiments_path if experiments_path is not None else PATHS.sample / "experiments.csv"
    records = load("experiments", path, table=table)
    market = load_market(bars_path, iv_path)
    rules = load_ruleset(ruleset_path)
    labels = classify(model, market.bars, market.iv, rules)
    hmm = classify("markov", market.bars, None, rules) if markov else None
    tagged = tag_experiments(records, labels, market.iv, hmm, source=str(path))
    shown = (
        "the sample experiments (`data/sample/experiments.csv`)"
        if experiments_path is None
        else f"`{experiments_path}`"
    )
    return ExperimentStudy(tagged, market, shown, model)


@dataclass(frozen=True)
class ExperimentSection:
    """The experiments part of the attribution page: tagged experiments, the best
    configuration per regime and the learned configs — or why the section is empty."""

    study: ExperimentStudy | None
    best: pd.DataFrame | None
    learned: dict[str, object] | None
    reason: str = ""

    def text(self) -> str:
        """What the section shows, in words."""
        if self.study is None or self.best is None:
            return f"No experiments attributed: {self.reason}."
        t = self.study.tagged
        wins = int(self.best["beats_runner_up"].sum())
        losing = self.best.loc[self.best["pnl_pct"] < 0, "regime"].tolist()
        money = (
            f" In {len(losing)} of them ({', '.join(losing)}) even the best loses money on "
            "average: the least bad, not a configuration to trade."
            if losing
            else ""
        )
        return (
            f"**Experiments:** {len(t):,} from {self.study.source}, each tagged with the "
            f"`{self.study.model}` regime most of its days fell in. {len(self.best)} regimes have "
            f"two or more configurations with enough runs to compare; the best beats its "
            f"runner-up significantly (paired bootstrap, 5%) in {wins} of them.{money} "
            "In-sample: the experiments that choose a configuration also score it, and rolling "
            "windows overlap."
        )


def experiment_section(
    experiments_path: str | Path | None,
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    model: str = "vix_trend",
    metric: str = "pnl_pct",
    min_experiments: int = 5,
    markov: bool = True,
) -> ExperimentSection:
    """``load_experiment_study`` + ``best_by_regime`` + ``learned_configs``; ``experiments_path``
    ``""`` skips the section (e.g. when the bars are not the experiments' markets)."""
    from research.attribution.experiments import best_by_regime, learned_configs

    if experiments_path == "":
        return ExperimentSection(None, None, None, "experiments_path is empty")
    study = load_experiment_study(
        experiments_path, bars_path=bars_path, iv_path=iv_path, model=model, markov=markov
    )
    best = best_by_regime(study.tagged, metric=metric, min_experiments=min_experiments)
    learned = learned_configs(study.tagged, best, metric=metric, model=model)
    return ExperimentSection(study, best, learned)


@dataclass(frozen=True)
class TuneStudy:
    """Tuning runs attributed to the regimes of their out-of-sample windows (seed 002)."""

    records: pd.DataFrame
    attributed: pd.DataFrame
    labels: pd.DataFrame
    """The ``tags`` model's daily labels of the tunes' markets."""
    market: MarketData
    source: str
    schema_version: str
    ruleset_id: str

    @property
    def workspace(self) -> str:
        """The workspace most tunes belong to (the queries' ``$1``)."""
        return str(self.attributed["workspace_id"].mode().iloc[0])

    def summary(self, uplift: UpliftResult, drift: DriftResult) -> dict[str, object]:
        """The notebook's machine-readable summary."""
        a = self.attributed
        return {
            "tunes": self.source,
            "tunes_count": len(a),
            "attributed": int((a["reason"] == "").sum()),
            "not_attributed": self.not_attributed,
            "regime_keys": a["regime_key"].value_counts().to_dict(),
            "sample": "out-of-sample (walk-forward: parameters chosen from earlier tunes only)",
            "uplift": uplift.summary.to_dict(orient="records"),
            "uplift_verdict": uplift.verdict(),
            "fell_back": uplift.notes,
            "drift": {
                "symbol": drift.symbol,
                "current_key": drift.current_key,
                "total_variation": drift.total_variation,
                "psi": drift.psi,
                "alert": drift.alert,
                "reasons": drift.reasons(),
            },
            "notes": list(self.market.notes),
        }

    def not_attributed_text(self) -> str:
        """Which tunes have no regime columns and why (empty when all are attributed)."""
        bad = self.not_attributed
        if not bad:
            return ""
        listing = "; ".join(f"{t}: {why}" for t, why in list(bad.items())[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        return f"{len(bad)} tunes are not attributed (their columns stay null): {listing}{more}."

    @property
    def not_attributed(self) -> dict[str, str]:
        """Tune id -> why it has no regime columns."""
        bad = self.attributed[self.attributed["reason"] != ""]
        return dict(zip(bad["tune_id"], bad["reason"], strict=True))

    def about(self) -> str:
        """The data paragraph for a page."""
        a = self.attributed
        runs = self.records["run_id"].nunique()
        return (
            f"**Tunes:** {len(a):,} tunes ({runs:,} runs, each scored in and out of sample) of "
            f"{a['strategy_id'].nunique()} strategies on {', '.join(sorted(set(a['symbol'])))}, "
            f"from {self.source}; regime keys from the `tags` model (schema "
            f"`{self.schema_version}`, ruleset `{self.ruleset_id}`). {self.market.about()}"
        )


def load_tune_study(
    tunes_path: str | Path | None = None,
    *,
    bars_path: str | Path | None = None,
    symbol: str | None = None,
    ruleset_path: str | Path | None = None,
    entry_window: int = 63,
) -> TuneStudy:
    """Tunes (default ``data/sample/tunes.csv``; CSV, Parquet, ... or a database file) with the
    seed-002 columns computed from the ``tags`` model on the bars of their markets.

    Raises
    ------
    ValueError
        A market of the tunes has no bars (names the file, the column and the rows).
    """
    from research.attribution.tunes import attribute_tunes
    from research.config import PATHS
    from research.data import market as market_data
    from research.data.loaders import load
    from research.data.overview import load_market
    from research.regimes import classify, load_ruleset

    path = tunes_path if tunes_path is not None else PATHS.sample / "tunes.csv"
    records = load("tunes", path)
    if symbol is not None:
        records = records.assign(symbol=symbol)
    elif "symbol" not in records.columns:
        raise ValueError(
            f"{path}: no 'symbol' column: say which market the tunes ran on (--symbol)"
        )
    available = set(
        market_data.DEFAULT_SYMBOLS
        if bars_path is None
        else market_data.load_bars(bars_path)["symbol"]
    )
    missing = records[~records["symbol"].isin(available)]
    if len(missing):
        rows = ", ".join(str(i + 1) for i in missing.index[:5])
        raise ValueError(
            f"{path}: column 'symbol': {sorted(set(missing['symbol']))} have no bars in "
            f"{len(missing)} rows (rows {rows}{', ...' if len(missing) > 5 else ''}; bars have "
            f"{sorted(available)})"
        )
    market = load_market(bars_path, None, symbols=sorted(set(records["symbol"])))
    rules = load_ruleset(ruleset_path)
    labels = classify("tags", market.bars, None, rules)
    attributed = attribute_tunes(
        records,
        labels,
        schema_version=rules.schema_version,
        ruleset_id=rules.ruleset_id,
        entry_window=entry_window,
    )
    shown = "the sample tunes (`data/sample/tunes.csv`)" if tunes_path is None else f"`{path}`"
    return TuneStudy(
        records, attributed, labels, market, shown, rules.schema_version, rules.ruleset_id
    )


def tune_database(db: str | None) -> str:
    """Where notebook 06 writes the tunes: ``db`` itself (a DuckDB file or a ``postgresql://``
    URL), or for ``""``/None a new DuckDB file in a temporary directory (the report then leaves
    the user's databases alone)."""
    import tempfile

    if db:
        return db
    return str(Path(tempfile.mkdtemp(prefix="regime-lab-tunes-")) / "tunes.duckdb")


def population_text(report: PopulationReport, db: str | None) -> str:
    """What the population did, naming the database (a temporary file when ``db`` is empty)."""
    name = "a temporary DuckDB file" if not db else f"`{report.target}`"
    return f"**Written to {name}:** " + report.describe().split(": ", 1)[1] + "."


def current_regimes(
    target: str, study: TuneStudy, *, window: int = 63, min_tunes: int = 3
) -> pd.DataFrame:
    """Per market of the tunes: its current regime key, how many tunes have it, the database
    lookup a bot would make for it (seed query 1 with the similar-key fallback) and the drift
    of its recent regime mix from the tunes' training days.

    Returns
    -------
    pandas.DataFrame
        ``symbol``, ``date``, ``current_regime`` (the key's trend | vol | efficiency),
        ``tunes_with_key``, ``lookup`` (words: exact or
        fell back), ``best_oos_sharpe`` and ``best_params`` of the top tune found,
        ``total_variation`` and ``drift`` (the reasons, or "none").
    """
    from research.attribution.tunes import drift, params_text
    from research.attribution.tunes_db import best_with_fallback

    rows = []
    for sym in sorted(set(study.attributed["symbol"])):
        d = drift(study.labels, study.attributed, symbol=sym, window=window, min_tunes=min_tunes)
        key = d.current_key or ""
        found = best_with_fallback(target, study.workspace, key, min_tunes=min_tunes)
        top = found.rows.iloc[0] if len(found.rows) else None
        tunes = d.table.set_index("regime_key")["tunes"].get(key, 0)
        rows.append(
            {
                "symbol": sym,
                "date": d.asof,
                "current_regime": " | ".join(key.split("|")[2:]),
                "tunes_with_key": int(tunes),
                "lookup": (
                    "exact key"
                    if found.distance == 0
                    else f"fell back to {len(found.keys_used)} "
                    f"key{'s' if len(found.keys_used) != 1 else ''} within tag distance "
                    f"{found.distance}"
                    if found.distance is not None
                    else "nothing found"
                ),
                "best_oos_sharpe": np.nan if top is None else float(top["best_oos_score"]),
                "best_params": None if top is None else params_text(top["best_oos_params"]),
                "total_variation": d.total_variation,
                "drift": "; ".join(d.reasons()) or "none",
            }
        )
    return pd.DataFrame(rows)
