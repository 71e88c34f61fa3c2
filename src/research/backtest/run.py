"""Run credit-spread backtests: call the kernels on a panel, shape the results.

The panel comes from ``research.backtest.market_panel``:

>>> panel = market_panel(bars, iv_table, tickers=["SPX", "IXIC"])          # doctest: +SKIP
>>> result = run_backtest(panel, BacktestConfig(), regimes=labels)        # doctest: +SKIP
>>> result.metrics.cagr, result.export_frame()                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from research._typing import FloatArray, IntArray, TradeRecording
from research.backtest import engine as engine_mod
from research.backtest import kernels
from research.backtest.market_panel import MarketPanel
from research.backtest.metrics import Metrics, compute_metrics, stress_table, yearly_returns
from research.backtest.pricing import SkewModel
from research.backtest.spreads import EXIT_REASONS, BacktestConfig
from research.constants import TRADING_DAYS

if TYPE_CHECKING:
    from research.backtest.conventions import MarketConvention
    from research.backtest.path_cache import PathCache
    from research.backtest.trade_paths import TradePaths


def regime_codes(
    panel: MarketPanel, labels: pd.DataFrame | None, column: str = "regime"
) -> tuple[IntArray, tuple[str, ...]]:
    """Regime label of each (day, ticker) as integer codes (−1: no label).

    Returns
    -------
    tuple
        ``(codes, labels)`` with codes indexing ``labels``.
    """
    shape = panel.close.shape
    if labels is None:
        return np.full(shape, -1, np.int64), ()
    grid = labels.pivot(index="date", columns="symbol", values=column).reindex(
        index=panel.dates, columns=list(panel.tickers)
    )
    names = tuple(sorted(pd.unique(grid.to_numpy().ravel()[pd.notna(grid.to_numpy().ravel())])))
    lookup = {name: i for i, name in enumerate(names)}
    codes = np.vectorize(lambda v: lookup.get(v, -1), otypes=[np.int64])(grid.to_numpy(object))
    return codes, names


@dataclass(frozen=True)
class BacktestResult:
    """One configuration's backtest: equity, trades and diagnostics."""

    config: BacktestConfig
    tickers: tuple[str, ...]
    equity: pd.Series
    trades: pd.DataFrame
    counters: dict[str, int]
    panel: MarketPanel = field(repr=False)

    @cached_property
    def metrics(self) -> Metrics:
        """CAGR, Sharpe, Sortino, max drawdown, win rate, … (``backtest.metrics``)."""
        return compute_metrics(self.equity, self.trades, rf=self.config.rate)

    def yearly(self) -> pd.DataFrame:
        """Per-year returns (``metrics.yearly_returns``)."""
        return yearly_returns(self.equity)

    def stress(self) -> pd.DataFrame:
        """The stress windows (``metrics.stress_table``)."""
        return stress_table(self.equity, self.trades)

    def export_frame(self) -> pd.DataFrame:
        """Trades in the validation plan's export format, validated by the ``trades`` contract.

        ``credit`` and ``max_loss`` are per share after fills (x the underlying's contract
        multiplier, 100 by default, per contract); ``pnl`` is per
        contract in $ (fees included); ``hold_days`` are calendar days; ``vix`` is the anchor IV
        index (or its proxy) in points on the entry day; ``delta`` the short leg's |delta|.
        """
        from research.data.contracts import validate

        t = self.trades
        pnl_pc = t["pnl"] / t["contracts"]
        frame = pd.DataFrame(
            {
                "date": t["entry_date"],
                "ticker": t["ticker"],
                "short_strike": t["short_strike"],
                "long_strike": t["long_strike"],
                "expiration": t["expiration"],
                "credit": t["credit"].round(4),
                "max_loss": t["max_loss"].round(4),
                "delta": t["delta"].round(4),
                "dte": t["dte"].astype(int),
                "iv_percentile": t["iv_percentile"].fillna(0.0).round(2),
                "vix": t["vix"].round(2),
                "underlying_price": t["underlying_price"],
                "outcome": np.select([pnl_pc > 0, pnl_pc < 0], ["profit", "loss"], "breakeven"),
                "pnl": pnl_pc.round(2),
                "exit_reason": t["exit_reason"],
                "hold_days": (t["exit_date"] - t["entry_date"]).dt.days,
                "contracts": t["contracts"],
                "regime": t["regime"],
            }
        )
        return validate("trades", frame, source="backtest export")

    def export_trades(self, path: str | Path) -> Path:
        """Write ``export_frame()`` atomically (the validation plan's ``--export-trades``): a
        JSON array for ``.json`` (the plan's format), else the table format the extension names
        (``research.data.writers.write_table``: ``.csv``, ``.parquet``, ``.jsonl``, ...)."""
        from research._io import write_text_atomic
        from research.data.writers import check_replaceable

        frame = self.export_frame()
        if not str(path).lower().endswith(".json"):
            from research.data.writers import write_table

            return write_table(frame, path)
        text = frame.assign(
            date=frame["date"].dt.strftime("%Y-%m-%d"),
            expiration=frame["expiration"].dt.strftime("%Y-%m-%d"),
        ).to_json(orient="records", indent=2)
        path = Path(path)
        check_replaceable(path, [str(c) for c in frame.columns], "--export-trades")
        write_text_atomic(path, text)
        return path


def _config_arrays(
    configs: Sequence[BacktestConfig], labels: tuple[str, ...], tickers: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """The kernels' per-config (and per config x ticker) parameter arrays."""
    skew_default = SkewModel()

    def arr(fn: Callable[[BacktestConfig], float], dtype: npt.DTypeLike = float) -> np.ndarray:
        return np.array([fn(c) for c in configs], dtype=dtype)

    mult = np.ones((len(configs), max(len(labels), 1)))
    for i, c in enumerate(configs):
        table = dict(c.sizing.regime_multipliers)
        for k, name in enumerate(labels):
            mult[i, k] = table.get(name, c.sizing.unknown_multiplier)
    div = np.array([[c.dividend_yield(t) for t in tickers] for c in configs], dtype=float)
    conv = [[c.convention(t) for t in tickers] for c in configs]
    # 1: the ticker's monthly expirations settle at the open, as the config's conventions
    # decide (``BacktestConfig.convention``: the symbol's own setting, else its default)
    am = np.array(
        [[1 if m.am_settled else 0 for m in row] for row in conv], dtype=np.int64
    ).reshape(len(configs), len(tickers))

    def per_ticker(
        fn: Callable[[MarketConvention], float | None], missing: float = -1.0
    ) -> np.ndarray:
        return np.array(
            [[missing if fn(m) is None else fn(m) for m in row] for row in conv], dtype=float
        ).reshape(len(configs), len(tickers))

    # ``BacktestConfig.convention`` fills width_pct and half_spread_pct (never None here)
    return dict(
        is_call=arr(lambda c: c.spread.strategy == "bear_call", np.int64),
        min_d=arr(lambda c: c.spread.min_delta),
        max_d=arr(lambda c: c.spread.max_delta),
        dte=arr(lambda c: c.spread.target_dte, np.int64),
        width_pct=per_ticker(lambda m: cast(float, m.width_pct) / 100),
        min_steps=arr(lambda c: c.spread.min_width_steps),
        min_ivp=arr(lambda c: c.spread.min_iv_percentile),
        pt=arr(lambda c: c.spread.profit_target_pct / 100),
        sl=arr(lambda c: c.spread.stop_loss_pct / 100),
        hs_pct=per_ticker(lambda m: cast(float, m.half_spread_pct) / 100),
        hs_min=per_ticker(lambda m: m.min_half_spread),
        fee=per_ticker(lambda m: m.fee_per_contract),
        tick=per_ticker(lambda m: m.tick),
        cm=per_ticker(lambda m: m.multiplier),
        step_over=per_ticker(lambda m: m.strike_step, np.nan),
        am=am,
        next_open=arr(lambda c: c.fills.timing == "next_open", np.int64),
        stop_day=arr(lambda c: c.fills.stop_fill == "intraday", np.int64),
        scaled=arr(lambda c: c.sizing.mode == "scaled", np.int64),
        n_fixed=arr(lambda c: c.sizing.contracts),
        risk_pct=arr(lambda c: c.sizing.risk_pct / 100),
        mult_table=mult,
        unknown_mult=arr(lambda c: c.sizing.unknown_multiplier),
        max_pos=arr(lambda c: c.limits.max_positions, np.int64),
        max_heat=arr(lambda c: c.limits.max_portfolio_heat_pct / 100),
        max_und=arr(lambda c: c.limits.max_per_underlying_pct / 100),
        init_eq=arr(lambda c: c.initial_equity),
        rate=arr(lambda c: c.rate),
        growth=arr(lambda c: (1.0 + c.rate) ** (1.0 / TRADING_DAYS)),
        div=div,
        slope=arr(lambda c: skew_default.slope if c.skew_slope is None else c.skew_slope),
        floor=arr(lambda c: c.skew_floor),
        cap=arr(lambda c: c.skew_cap),
        curv=arr(lambda c: c.skew_curvature),
        atm_a=arr(lambda c: c.atm_intercept),
        atm_b=arr(lambda c: c.atm_ratio),
        chain_fill=arr(lambda c: c.fills.chain_fill),
        missing_close=arr(lambda c: c.fills.missing_quote == "close", np.int64),
    )


@dataclass(frozen=True)
class GridOutput:
    """Raw kernel output for many configs (``record_trades=False`` keeps only equity)."""

    equity: FloatArray
    n_trades: IntArray
    counters: IntArray
    trades: FloatArray | None
    heat: FloatArray
    """configs x days: max loss at risk of the open spreads / equity at each close."""
    trade_pnl: FloatArray | None = None
    """With ``record_trades="pnl"``: configs x trades, each closed trade's P&L (fees included)
    in closing order (rows past ``n_trades`` undefined)."""

    def pnl_of(self, i: int) -> FloatArray:
        """Config ``i``'s closed trades' P&L in closing order (from either record)."""
        n = int(self.n_trades[i])
        if self.trade_pnl is not None:
            return self.trade_pnl[i, :n]
        if self.trades is None:
            raise ValueError("the kernel ran with record_trades=False")
        return self.trades[i, :n, kernels.F_PNL]

    def pnl_frame(self, i: int, dates: pd.DatetimeIndex) -> pd.DataFrame:
        """Config ``i``'s trades as ``entry_date, exit_date, pnl`` (what ``compute_metrics``
        needs)."""
        if self.trades is None:
            raise ValueError("the kernel ran with record_trades=False")
        raw = self.trades[i, : self.n_trades[i]]
        return pd.DataFrame(
            {
                "entry_date": dates[raw[:, kernels.F_ENTRY].astype(int)],
                "exit_date": dates[raw[:, kernels.F_EXIT].astype(int)],
                "pnl": raw[:, kernels.F_PNL],
            }
        )


@dataclass(frozen=True)
class RegimeCodes:
    """Regime labels as integer codes for the kernel: ``codes[s, day, ticker]`` indexes
    ``labels`` (−1: no label) for each of several label sets ``s`` (e.g. the observed labels and
    permutations of them); config ``i`` uses set ``set_of[i]``."""

    codes: IntArray
    labels: tuple[str, ...]


ENGINES: tuple[str, ...] = ("auto", "shared", "per_config")
"""``run_kernel(engine=...)``: shared trade paths where they pay (``auto``), always, or the
per-configuration reference kernels."""
SHARED_MIN_CONFIGS = 4
"""With ``engine="auto"``, configurations sharing a strategy are run on shared trade paths
when there are at least this many of them (or the paths are already computed): phase 1 costs
about as much as this many per-configuration runs (``benchmarks/bench_grids.py``)."""


def _label_codes(
    panel: MarketPanel,
    n_configs: int,
    regimes: pd.DataFrame | None,
    regime_column: str,
    code_sets: RegimeCodes | None,
    set_of: Sequence[int] | IntArray | None,
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    if code_sets is None:
        codes2d, labels = regime_codes(panel, regimes, regime_column)
        codes = codes2d[None, :, :]
    else:
        codes, labels = np.asarray(code_sets.codes, np.int64), code_sets.labels
        if codes.shape[1:] != panel.close.shape:
            raise ValueError(
                f"code sets have shape {codes.shape[1:]} per set, the panel {panel.close.shape}"
            )
    which = np.zeros(n_configs, np.int64) if set_of is None else np.asarray(set_of, np.int64)
    if len(which) != n_configs or (len(which) and not 0 <= which.min() <= which.max() < len(codes)):
        raise ValueError("set_of needs one valid label-set index per config")
    return np.ascontiguousarray(codes), labels, which


@dataclass(frozen=True)
class PathPlan:
    """Configurations grouped by strategy (``trade_paths.strategy_key``) on one panel."""

    digests: tuple[str, ...]
    """Per group, the cache key of its trade paths."""
    members: tuple[tuple[int, ...], ...]
    """Per group, the indices of its configurations."""


def plan_paths(
    panel: MarketPanel,
    configs: Sequence[BacktestConfig],
    arrays: dict[str, np.ndarray] | None = None,
) -> PathPlan:
    """Group ``configs`` by the strategy their trade paths depend on (``arrays``: their
    ``_config_arrays``, if already built)."""
    from research.backtest.trade_paths import path_digest, strategy_groups

    a = arrays if arrays is not None else _config_arrays(configs, (), panel.tickers)
    chains = panel.chains is not None
    groups = strategy_groups(chains, a)
    return PathPlan(
        digests=tuple(path_digest(panel.digest, key, chains) for key in groups),
        members=tuple(tuple(v) for v in groups.values()),
    )


def prepare_paths(
    panel: MarketPanel,
    configs: Sequence[BacktestConfig],
    *,
    min_configs: int = SHARED_MIN_CONFIGS,
    cache: PathCache | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_path: Callable[[], None] | None = None,
) -> dict[str, TradePaths]:
    """Phase 1 for every strategy at least ``min_configs`` of ``configs`` share (or already
    cached): ``{digest: TradePaths}``, to hand to ``run_kernel(paths=...)`` — e.g. shipped once
    to the workers of a grid.

    ``on_plan(n)`` is told how many strategies' paths will be prepared, ``on_path()`` is called
    as each is ready (a progress bar's total and steps).
    """
    from research.backtest.path_cache import default_cache

    for cfg in configs:
        cfg.check()
    _refuse_late_fills_on_chains(panel, configs)
    cache = cache if cache is not None else default_cache()
    a = _config_arrays(configs, (), panel.tickers)
    plan = plan_paths(panel, configs, a)
    wanted = [
        (digest, members)
        for digest, members in zip(plan.digests, plan.members, strict=True)
        if len(members) >= min_configs or digest in cache
    ]
    if on_plan is not None:
        on_plan(len(wanted))
    out: dict[str, TradePaths] = {}
    for digest, members in wanted:
        out[digest] = _paths_for(panel, a, members[0], digest, cache)
        if on_path is not None:
            on_path()
    return out


def _paths_for(
    panel: MarketPanel, a: dict[str, np.ndarray], index: int, digest: str, cache: PathCache
) -> TradePaths:
    from research.backtest.trade_paths import compute_trade_paths

    paths = cache.get(digest)
    if paths is None:
        paths = compute_trade_paths(panel, a, index, key=digest)
        cache.put(paths)
    return paths


def _refuse_late_fills_on_chains(panel: MarketPanel, configs: Sequence[BacktestConfig]) -> None:
    from research.backtest.spreads import ConfigError

    if panel.chains is None:
        return
    late = [i for i, c in enumerate(configs) if c.fills.timing == "next_open"]
    if late:
        raise ConfigError(
            "fills at the next open need opening quotes; option chains are end-of-day "
            f"(configs {late[:5]}): use fills.timing = close"
        )
    intraday = [i for i, c in enumerate(configs) if c.fills.stop_fill == "intraday"]
    if intraday:
        raise ConfigError(
            "intraday stops need intraday prices of the spread; option chains are end-of-day "
            f"(configs {intraday[:5]}): use fills.stop_fill = close"
        )


def run_kernel(
    panel: MarketPanel,
    configs: Sequence[BacktestConfig],
    regimes: pd.DataFrame | None = None,
    *,
    record_trades: TradeRecording = True,
    regime_column: str = "regime",
    code_sets: RegimeCodes | None = None,
    set_of: Sequence[int] | IntArray | None = None,
    engine: str = "auto",
    paths: Mapping[str, TradePaths] | None = None,
    cache: PathCache | None = None,
) -> GridOutput:
    """Evaluate every config (parallel over configs).

    Configurations that share a strategy (same panel, strikes, expiry, pricing: everything but
    sizing, limits, regime multipliers, label set, IV-percentile filter, profit target and stop
    loss) share its candidate trades and their price paths (phase 1, ``trade_paths``, cached);
    each then runs a portfolio pass over them (phase 2, ``portfolio``). Results are identical
    to the per-configuration kernels (``engine._run``, ``chain_engine._run_chains``).

    Parameters
    ----------
    panel
        ``market_panel`` output.
    configs
        The configurations (checked first).
    regimes
        A regime table (``date, symbol, regime``) whose labels the multipliers refer to.
    record_trades
        Keep every trade (False: equity, heat and counters only; ``"pnl"``: only each trade's
        P&L, in ``GridOutput.trade_pnl``, what a grid's metrics need).
    regime_column
        Column of ``regimes`` with the labels.
    code_sets, set_of
        Instead of ``regimes``: several label sets as codes (``RegimeCodes``, days aligned with
        the panel) and, per config, which set it uses (default: set 0 for every config).
    engine
        ``"auto"``: shared paths for strategies with at least ``SHARED_MIN_CONFIGS`` configs
        (or paths already computed), the per-configuration kernel for the rest; ``"shared"``:
        always; ``"per_config"``: never (the reference). Configurations with intraday stops
        (``fills.stop_fill = "intraday"``) always run on the per-configuration kernel.
    paths
        Phase-1 results already computed (``prepare_paths``), by digest.
    cache
        Where computed paths are kept (default ``path_cache.default_cache()``).
    """
    from research.backtest.path_cache import default_cache

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    for cfg in configs:
        cfg.check()
    _refuse_late_fills_on_chains(panel, configs)
    codes, labels, which = _label_codes(
        panel, len(configs), regimes, regime_column, code_sets, set_of
    )
    a = _config_arrays(configs, labels, panel.tickers)
    n_cfg, n_days = len(configs), panel.close.shape[0]
    if engine == "per_config" or n_cfg == 0:
        groups: list[tuple[tuple[int, ...], TradePaths | None]] = [(tuple(range(n_cfg)), None)]
    else:
        cache = cache if cache is not None else default_cache()
        given = paths or {}
        plan = plan_paths(panel, configs, a)
        groups = []
        rest: list[int] = []
        for digest, members in zip(plan.digests, plan.members, strict=True):
            # intraday stops need the bar's extremes, which the shared paths do not carry:
            # those configurations run on the per-configuration kernel
            intraday = tuple(k for k in members if configs[k].fills.stop_fill == "intraday")
            rest.extend(intraday)
            members = tuple(k for k in members if k not in intraday)
            if not members:
                continue
            if digest in given:
                groups.append((members, given[digest]))
            elif engine == "shared" or len(members) >= SHARED_MIN_CONFIGS or digest in cache:
                groups.append((members, _paths_for(panel, a, members[0], digest, cache)))
            else:
                rest.extend(members)
        if rest:
            groups.append((tuple(sorted(rest)), None))
    equity = np.zeros((n_cfg, n_days))
    heat = np.zeros((n_cfg, n_days))
    n_trades = np.zeros(n_cfg, np.int64)
    counters = np.zeros((n_cfg, kernels.N_STATS), np.int64)
    pnl_only = record_trades == "pnl"
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for members, group_paths in groups:
        idx = np.asarray(members, np.int64)
        whole = len(idx) == n_cfg
        sub = a if whole else {k: v[idx] for k, v in a.items()}
        out = GridOutput(
            equity if whole else np.zeros((len(idx), n_days)),
            n_trades if whole else np.zeros(len(idx), np.int64),
            counters if whole else np.zeros((len(idx), kernels.N_STATS), np.int64),
            None,
            heat if whole else np.zeros((len(idx), n_days)),
        )
        if group_paths is None:
            trades = _run_reference(panel, sub, codes, which[idx], bool(record_trades), out)
            if pnl_only:
                trades = trades[:, :, kernels.F_PNL : kernels.F_PNL + 1]
        else:
            trades = _run_shared(panel, group_paths, sub, codes, which[idx], record_trades, out)
        if not whole:
            equity[idx], heat[idx] = out.equity, out.heat
            n_trades[idx], counters[idx] = out.n_trades, out.counters
        parts.append((idx, trades))
    if not record_trades:
        return GridOutput(equity, n_trades, counters, None, heat)
    if len(parts) == 1 and len(parts[0][0]) == n_cfg:
        trades = parts[0][1]
    else:
        width = max(1, max((t.shape[1] for _, t in parts), default=1))
        trades = np.full((n_cfg, width, 1 if pnl_only else kernels.N_FIELDS), np.nan)
        for idx, part in parts:
            trades[idx, : part.shape[1]] = part
    if pnl_only:
        return GridOutput(equity, n_trades, counters, None, heat, trade_pnl=trades[:, :, 0])
    return GridOutput(equity, n_trades, counters, trades, heat)


def _run_shared(
    panel: MarketPanel,
    tp: TradePaths,
    a: dict[str, np.ndarray],
    codes: np.ndarray,
    which: np.ndarray,
    record: TradeRecording,
    out: GridOutput,
) -> np.ndarray:
    """Phase 2 over ``tp`` for the configs of ``a``; returns the trades buffer (rows past
    ``n_trades`` undefined; one field, the P&L, with ``record="pnl"``)."""
    from research.backtest.portfolio import _portfolio

    ivp = np.ascontiguousarray(np.nan_to_num(panel.iv_percentile, nan=-1.0), dtype=float)

    def call(trades: np.ndarray, keep: bool) -> None:
        _portfolio(
            tp.screen,
            tp.entry,
            tp.half,
            tp.mid0,
            tp.exp_day,
            tp.am,
            tp.fill if tp.lag else np.empty((1, 5)),
            tp.fill_ok if tp.lag else np.empty(1, np.int8),
            tp.offset,
            tp.value,
            tp.debit,
            tp.open_debit if tp.lag else np.empty(1),
            tp.open_value if tp.lag else np.empty(1),
            tp.missing if tp.kind == "chain" else np.empty(1, np.uint8),
            tp.lag,
            tp.kind == "chain",
            ivp,
            codes,
            which,
            a["fee"][0],
            a["cm"][0],
            a["min_ivp"],
            a["pt"],
            a["sl"],
            a["missing_close"],
            a["scaled"],
            a["n_fixed"],
            a["risk_pct"],
            a["mult_table"],
            a["unknown_mult"],
            a["max_pos"],
            a["max_heat"],
            a["max_und"],
            a["init_eq"],
            a["growth"],
            keep,
            out.equity,
            out.heat,
            trades,
            out.n_trades,
            out.counters,
        )

    n_cfg = len(a["pt"])
    # at most one trade per candidate; rows past a config's count are never written (nor,
    # with np.empty, touched: the buffer costs only the trades it holds)
    width = int((tp.screen == 0).sum()) if record else 0
    fields = 1 if record == "pnl" else kernels.N_FIELDS
    trades = np.empty((n_cfg, max(width, 1), fields))
    call(trades, bool(record))
    return trades


def _run_reference(
    panel: MarketPanel,
    a: dict[str, np.ndarray],
    codes: np.ndarray,
    which: np.ndarray,
    record: bool,
    out: GridOutput,
) -> np.ndarray:
    """The per-configuration kernels (model or chain) for the configs of ``a``."""
    n_cfg, (n_days, n_tk) = len(a["pt"]), panel.close.shape
    max_trades = n_days * n_tk if record else 1
    trades = np.full((n_cfg, max_trades, kernels.N_FIELDS), np.nan)
    if panel.chains is not None:
        _run_on_chains(panel, a, codes, which, record, out, trades)
        return trades
    high, low = panel.extremes()
    engine_mod._run(
        panel.day_ordinals,
        np.ascontiguousarray(panel.close, dtype=float),
        panel.opens(),
        high,
        low,
        np.ascontiguousarray(panel.atm_iv, dtype=float),
        np.ascontiguousarray(panel.mark_iv, dtype=float),
        np.ascontiguousarray(np.nan_to_num(panel.iv_percentile, nan=-1.0), dtype=float),
        codes,
        which,
        panel.steps_2d(),
        a["is_call"],
        a["min_d"],
        a["max_d"],
        a["dte"],
        a["width_pct"],
        a["min_steps"],
        a["min_ivp"],
        a["pt"],
        a["sl"],
        a["hs_pct"],
        a["hs_min"],
        a["fee"],
        a["tick"],
        a["cm"],
        a["step_over"],
        a["am"],
        a["next_open"],
        a["stop_day"],
        a["scaled"],
        a["n_fixed"],
        a["risk_pct"],
        a["mult_table"],
        a["unknown_mult"],
        a["max_pos"],
        a["max_heat"],
        a["max_und"],
        a["init_eq"],
        a["rate"],
        a["growth"],
        a["div"],
        a["slope"],
        a["floor"],
        a["cap"],
        a["curv"],
        a["atm_a"],
        a["atm_b"],
        record,
        out.equity,
        out.heat,
        trades,
        out.n_trades,
        out.counters,
    )
    return trades


def _run_on_chains(
    panel: MarketPanel,
    a: dict[str, np.ndarray],
    codes: np.ndarray,
    which: np.ndarray,
    record: bool,
    out: GridOutput,
    trades: np.ndarray,
) -> None:
    from research.backtest.chain_engine import _run_chains

    book = panel.chains
    assert book is not None
    _run_chains(
        panel.day_ordinals,
        np.ascontiguousarray(panel.close, dtype=float),
        panel.opens(),
        np.ascontiguousarray(np.nan_to_num(panel.iv_percentile, nan=-1.0), dtype=float),
        codes,
        which,
        book.day_start,
        book.put,
        book.expiry,
        book.strike,
        book.bid,
        book.ask,
        book.delta,
        book.iv,
        a["is_call"],
        a["min_d"],
        a["max_d"],
        a["dte"],
        a["width_pct"],
        a["min_ivp"],
        a["pt"],
        a["sl"],
        a["chain_fill"],
        a["missing_close"],
        a["fee"],
        a["tick"],
        a["cm"],
        a["am"],
        a["scaled"],
        a["n_fixed"],
        a["risk_pct"],
        a["mult_table"],
        a["unknown_mult"],
        a["max_pos"],
        a["max_heat"],
        a["max_und"],
        a["init_eq"],
        a["rate"],
        a["growth"],
        a["div"],
        record,
        out.equity,
        out.heat,
        trades,
        out.n_trades,
        out.counters,
    )


def _trades_frame(
    panel: MarketPanel, raw: np.ndarray, labels: tuple[str, ...], config: BacktestConfig
) -> pd.DataFrame:
    if len(raw) == 0:
        raw = np.empty((0, kernels.N_FIELDS))
    entry = raw[:, kernels.F_ENTRY].astype(int)
    exit_ = raw[:, kernels.F_EXIT].astype(int)
    expiry = raw[:, kernels.F_EXPIRY].astype(np.int64)
    tk = raw[:, kernels.F_TICKER].astype(int)
    codes = raw[:, kernels.F_REGIME].astype(int)
    names = np.array([*labels, None], dtype=object)
    frame = pd.DataFrame(
        {
            "entry_date": panel.dates[entry],
            "exit_date": panel.dates[exit_],
            "ticker": np.array(panel.tickers, dtype=object)[tk],
            # chains record the expiration date (day ordinal), the model a panel day index
            "expiration": pd.to_datetime(expiry, unit="D")
            if panel.chains is not None
            else panel.dates[expiry],
            "short_strike": raw[:, kernels.F_KS],
            "long_strike": raw[:, kernels.F_KL],
            "credit": raw[:, kernels.F_CREDIT],
            "max_loss": raw[:, kernels.F_MAXLOSS],
            "delta": raw[:, kernels.F_DELTA],
            "dte": raw[:, kernels.F_DTE],
            "iv_percentile": raw[:, kernels.F_IVP],
            "iv": raw[:, kernels.F_IV],
            "vix": panel.vix[entry, tk] if len(raw) else np.empty(0),
            "iv_source": panel.iv_source[entry, tk] if len(raw) else np.empty(0, object),
            "underlying_price": raw[:, kernels.F_SPOT],
            "contracts": raw[:, kernels.F_CONTRACTS].astype(int),
            "debit": raw[:, kernels.F_DEBIT],
            # the spread's mid behind each fill (a share): credit = entry_mid - half spread,
            # debit = exit_mid + half spread (exit_mid: the intrinsic value when it settles)
            "entry_mid": raw[:, kernels.F_MID_IN],
            "exit_mid": raw[:, kernels.F_MID_OUT],
            "pnl": raw[:, kernels.F_PNL],
            "exit_reason": np.array(EXIT_REASONS, dtype=object)[
                raw[:, kernels.F_REASON].astype(int)
            ]
            if len(raw)
            else np.empty(0, object),
            "regime": names[np.where(codes >= 0, codes, len(labels))],
            "multiplier": raw[:, kernels.F_MULT],
        }
    )
    frame["pnl_per_contract"] = frame["pnl"] / frame["contracts"]
    units = np.array([config.convention(t).multiplier for t in panel.tickers], dtype=float)
    frame["max_loss_total"] = frame["max_loss"] * units[tk] * frame["contracts"]
    return frame.sort_values(["entry_date", "ticker"], kind="stable", ignore_index=True)


def run_backtests(
    panel: MarketPanel,
    configs: Sequence[BacktestConfig],
    regimes: pd.DataFrame | None = None,
    regime_column: str = "regime",
) -> list[BacktestResult]:
    """Backtest several configurations on the same panel, with trades.

    Parameters
    ----------
    panel
        ``market_panel`` output.
    configs
        The configurations (checked first).
    regimes
        A regime table (``date, symbol, regime``) whose labels the sizing multipliers refer to.
    """
    out = run_kernel(panel, configs, regimes, regime_column=regime_column)
    _, labels = regime_codes(panel, regimes, regime_column)
    results = []
    assert out.trades is not None
    for i, cfg in enumerate(configs):
        raw = out.trades[i, : out.n_trades[i]]
        results.append(
            BacktestResult(
                config=cfg,
                tickers=panel.tickers,
                equity=pd.Series(out.equity[i], index=panel.dates, name="equity"),
                trades=_trades_frame(panel, raw, labels, cfg),
                counters=dict(
                    zip(
                        (
                            "entries",
                            "position_size_zero",
                            "limits",
                            "no_strike",
                            "iv_filter",
                            "credit_below_costs",
                            "missing_quotes",
                        ),
                        map(int, out.counters[i]),
                        strict=True,
                    )
                ),
                panel=panel,
            )
        )
    return results


def run_backtest(
    panel: MarketPanel, config: BacktestConfig | None = None, regimes: pd.DataFrame | None = None
) -> BacktestResult:
    """Backtest one configuration (the same code path as many)."""
    return run_backtests(panel, [config or BacktestConfig()], regimes)[0]
