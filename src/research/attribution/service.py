"""Attribution from files, for the command line and the notebooks: load the records and the
market data the way every command does, label regimes, prepare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from research.attribution.signals import PreparedSignals, prepare
from research.attribution.tunes import DriftResult, UpliftResult
from research.attribution.tunes_db import PopulationReport
from research.data.overview import MarketData

if TYPE_CHECKING:
    from research.attribution.experiments import WindowPersistence

__all__ = [
    "ExperimentSection",
    "ExperimentStudy",
    "SignalStudy",
    "TuneStudy",
    "current_regimes",
    "experiment_section",
    "load_experiment_study",
    "load_signal_study",
    "load_tune_study",
    "population_text",
    "tune_database",
]


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
        """The notebook's machine-readable summary: ``signals, records_used, agents,
        regime_model, sample, finding, per_agent_regime`` (the table's rows, with ``excess_p``),
        ``decay, notes``, and ``signals_method`` (the excess interval's method in words) and
        ``signals_block_months``."""
        from research.attribution.signals import EXCESS_BLOCK_MONTHS, EXCESS_METHOD

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
            "signals_method": EXCESS_METHOD,
            "signals_block_months": EXCESS_BLOCK_MONTHS,
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
    metric: str = "pnl_pct"
    """The column that ranked the configurations."""
    persistence: WindowPersistence | None = None
    """How persistent the windows' results are from year to year
    (``experiments.window_persistence``; None when it cannot be estimated)."""

    @property
    def grouping(self) -> str | None:
        """The grouping of ``best`` (``experiments.GROUPINGS`` key), None without a table."""
        if self.best is None:
            return None
        return str(self.best.attrs.get("grouping", "entry_regime"))

    def text(self) -> str:
        """What the section shows, in words: the grouping, how many regimes compare
        configurations, per regime whether the best-vs-runner-up comparison is tested at all
        (*untested* when its independent blocks cannot give p < 5 %, with the blocks a verdict
        needs) and its outcome, the windows' estimated persistence (why blocks need two years
        between them), and the regimes whose best configuration loses money — worded from the
        counts, true for any ranking metric."""
        from research.attribution.experiments import blocks_needed, losing_text

        if self.study is None or self.best is None:
            return f"No experiments attributed: {self.reason}."
        t = self.study.tagged
        by = self.grouping or "entry_regime"
        b = self.best
        wins = int(b["beats_runner_up"].sum())
        tested = int(b["tested"].sum())
        losing = b.loc[b["loses_money"]]
        money = ""
        if len(losing):
            parts = "; ".join(
                f"{r['regime']}: mean pnl_pct {r['pnl_pct']:.2f}, "
                f"{losing_text(int(r['configs_losing']), int(r['configs']))}"
                for _, r in losing.iterrows()
            )
            # ranked by pnl_pct, the best losing means every compared one lost ("even");
            # ranked by another metric, the counts say how many did
            lead = "even the best" if self.metric == "pnl_pct" else f"the best by `{self.metric}`"
            money = (
                f" In {len(losing)} of them ({', '.join(losing['regime'])}) {lead} loses money on "
                f"average ({parts}): not a configuration to trade; the selector stands aside "
                "there unless told otherwise."
            )
        if by == "entry_regime":
            unlabelled = int(t["entry_regime"].isna().sum())
            how = (
                f"each attributed to the `{self.study.model}` regime known when it started (the "
                "label on the last labelled day on or before its start)"
                + (
                    f"; {unlabelled} start before the first label and are left out"
                    if unlabelled
                    else ""
                )
            )
        else:
            how = (
                f"each tagged with the `{self.study.model}` regime most of its days fell in "
                "(in-sample hindsight: known only after the window ran, not what a bot knows "
                "when it starts)"
            )
        per_regime = "; ".join(
            f"{r['regime']}: {r['best_config']} over {r['runner_up']} (the top two of "
            f"{int(r['configs'])}), {r['evidence']}"
            for _, r in b.iterrows()
        )
        blocks = (
            "independent blocks: windows that overlap or lie less than two years apart, across "
            "symbols too, form one block"
        )
        need = int(b.attrs.get("blocks_needed", blocks_needed(0.05)))
        if tested == 0:
            most = int(b["blocks"].max())
            floor = min(1.0, 2.0 / 2.0**most)
            outcome = (
                "in none of them can the test of the best against its runner-up reject (exact "
                f"sign-flip test on {blocks}; 5%): with at most {most} "
                f"{'block' if most == 1 else 'blocks'} in a regime no p-value can fall below "
                f"{floor:.3g}, so the evidence is untested — too few independent blocks to "
                f"test, not evidence against the best; a verdict needs at least {need} blocks"
            )
        else:
            outcome = (
                f"the test of the best against its runner-up (exact sign-flip test on {blocks}; "
                f"5%) can reject in {tested} of them and the best beats its runner-up in {wins}"
                + (
                    f"; in the other {len(b) - tested} it cannot reject: too few independent "
                    "blocks (untested)"
                    if tested < len(b)
                    else ""
                )
            )
        persist = ""
        if self.persistence is not None:
            hi = max(self.persistence.phi, self.persistence.phi_lag2)
            persist = (
                " The windows' results persist from year to year: on these experiments, "
                f"{self.persistence.text()}. That is why blocks need two full years between "
                f"them: at phi = {hi:.2f}, two-year windows two years apart correlate "
                f"{hi**3 * (1 + hi) / 2:.2g} (a year apart {hi**2 * (1 + hi) / 2:.2g})."
            )
        return (
            f"**Experiments:** {len(t):,} from {self.study.source}, {how}. {len(b)} regimes have "
            f"two or more configurations with enough runs to compare; {outcome}. "
            f"{per_regime}.{money}{persist} In-sample: the experiments that choose a "
            "configuration also score it."
        )

    def summary(self) -> dict[str, object]:
        """The section's part of notebook 05's machine-readable summary.

        Returns
        -------
        dict
            ``experiments`` (``text()``), ``best_by_regime`` (the table's rows: ``regime,
            best_config, experiments, metric_mean, ci_low, ci_high, pnl_pct, win_rate,
            runner_up, diff_vs_runner_up, p_vs_runner_up, beats_runner_up, key_settings, pairs,
            blocks, min_p, tested, evidence, configs, configs_losing, loses_money, grouping``;
            None without a table), ``experiments_grouping`` and
            ``experiments_grouping_text``, ``experiments_test``, ``experiments_interval``,
            ``experiments_block_gap_days`` (windows with fewer days than this between them share
            a block), ``experiments_blocks_needed`` (the fewest blocks that can reject at 5 %),
            ``experiments_persistence`` (``phi, phi_lag2, acf1, acf2, series, windows`` of
            ``experiments.window_persistence``; None when not estimable),
            ``experiments_untested`` (regimes whose comparison cannot reject: evidence
            *untested*), ``experiments_unlabelled`` (experiments without a regime in the
            grouping), ``learned_configs`` (per regime: ``regime, config, served, loses_money,
            configs, configs_losing, blocks, min_p, tested, evidence, p_vs_runner_up,
            beats_runner_up``), ``default_config`` and ``losing_policy``.
        """
        from research.attribution.experiments import (
            BLOCK_GAP_DAYS,
            GROUPINGS,
            LOSING_POLICY,
            RUNNER_UP_TEST,
        )

        by = self.grouping
        learned = self.learned or {}
        regimes = cast(dict[str, Any], learned.get("regimes") or {})
        default = cast(dict[str, Any], learned.get("default") or {})
        return {
            "experiments": self.text(),
            "best_by_regime": None if self.best is None else self.best.to_dict(orient="records"),
            "experiments_grouping": by,
            "experiments_grouping_text": GROUPINGS[by] if by is not None else None,
            "experiments_test": RUNNER_UP_TEST,
            "experiments_interval": (
                "cluster-robust t-interval of the best configuration's mean "
                "(research.clustered.clustered_test: clusters = the independent blocks of the "
                "test, windows that overlap or lie less than two years apart forming one; CR1, "
                "blocks - 1 degrees of freedom)"
            ),
            "experiments_block_gap_days": None
            if self.best is None
            else int(self.best.attrs.get("gap_days", BLOCK_GAP_DAYS)),
            "experiments_blocks_needed": None
            if self.best is None
            else int(self.best.attrs.get("blocks_needed", 0)) or None,
            "experiments_persistence": None
            if self.persistence is None
            else {
                "phi": self.persistence.phi,
                "phi_lag2": self.persistence.phi_lag2,
                "acf1": self.persistence.acf1,
                "acf2": self.persistence.acf2,
                "series": self.persistence.series,
                "windows": self.persistence.windows,
            },
            "experiments_untested": None
            if self.best is None
            else self.best.loc[~self.best["tested"], "regime"].tolist(),
            "experiments_unlabelled": None
            if self.best is None
            else int(self.best.attrs.get("no_regime", 0)),
            "learned_configs": [
                {
                    "regime": regime,
                    "config": cfg["config"],
                    "served": cfg["served"],
                    "loses_money": cfg["evidence"]["loses_money"],
                    "configs": cfg["evidence"]["configs"],
                    "configs_losing": cfg["evidence"]["configs_losing"],
                    "blocks": cfg["evidence"]["blocks"],
                    "min_p": cfg["evidence"]["min_p"],
                    "tested": cfg["evidence"]["tested"],
                    "evidence": cfg["evidence"]["evidence_text"],
                    "p_vs_runner_up": cfg["evidence"]["p_vs_runner_up"],
                    "beats_runner_up": cfg["evidence"]["beats_runner_up"],
                }
                for regime, cfg in regimes.items()
            ],
            "default_config": {
                "config": default.get("config"),
                "loses_money": (default.get("evidence") or {}).get("loses_money"),
            }
            if default
            else None,
            "losing_policy": LOSING_POLICY,
        }


def experiment_section(
    experiments_path: str | Path | None,
    *,
    bars_path: str | Path | None = None,
    iv_path: str | Path | Sequence[str | Path] | None = None,
    model: str = "vix_trend",
    metric: str = "pnl_pct",
    min_experiments: int = 5,
    markov: bool = True,
    grouping: str = "entry_regime",
) -> ExperimentSection:
    """``load_experiment_study`` + ``best_by_regime`` (grouped by ``grouping``: the entry regime
    by default, ``"dominant_regime"`` for the in-sample hindsight view) + ``learned_configs`` +
    ``window_persistence`` (None when the experiments do not allow it: no symbol with two
    configurations on five or more common windows); ``experiments_path`` ``""`` skips the
    section (e.g. when the bars are not the experiments' markets)."""
    from research.attribution.experiments import (
        best_by_regime,
        learned_configs,
        window_persistence,
    )

    if experiments_path == "":
        return ExperimentSection(None, None, None, "experiments_path is empty")
    study = load_experiment_study(
        experiments_path, bars_path=bars_path, iv_path=iv_path, model=model, markov=markov
    )
    best = best_by_regime(study.tagged, by=grouping, metric=metric, min_experiments=min_experiments)
    learned = learned_configs(study.tagged, best, metric=metric, model=model)
    try:
        persistence = window_persistence(study.tagged, metric=metric)
    except ValueError:
        persistence = None
    return ExperimentSection(study, best, learned, metric=metric, persistence=persistence)


@dataclass(frozen=True)
class TuneStudy:
    """Tuning runs attributed to the regimes of their out-of-sample windows."""

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
        """The notebook's machine-readable summary: ``tunes, tunes_count, attributed,
        not_attributed, regime_keys, sample, uplift`` (rows ``vs, n, mean_diff, ci_low,
        ci_high, p, clusters, years, block_years, method``: ``clusters`` the blocks of
        consecutive OOS years), ``uplift_verdict, fell_back, drift, notes``, and
        ``uplift_evaluated`` (tunes evaluated), ``min_tunes_for_verdict``, ``uplift_blocks``
        (blocks of ``uplift_block_years`` consecutive OOS years the baseline comparison's tunes
        fall in), ``min_blocks_for_verdict``, ``uplift_method``."""
        from research.attribution.tunes import (
            MIN_BLOCKS_FOR_VERDICT,
            MIN_TUNES_FOR_VERDICT,
            UPLIFT_METHOD,
        )

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
            "uplift_evaluated": uplift.evaluated,
            "min_tunes_for_verdict": MIN_TUNES_FOR_VERDICT,
            "uplift_blocks": int(uplift.row("baseline")["clusters"]),
            "uplift_block_years": uplift.block_years,
            "min_blocks_for_verdict": MIN_BLOCKS_FOR_VERDICT,
            "uplift_method": UPLIFT_METHOD,
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
    regime columns computed from the ``tags`` model on the bars of their markets.

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
    """Per market of the tunes: its current regime key, how many tunes have it, the database lookup
    a bot would make for it (the best-by-key query with the similar-key fallback) and the drift of
    its recent regime mix from the tunes' training days.

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
