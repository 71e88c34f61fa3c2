"""What the trade filter is shown, and how its answer is read: ``build_context`` reproduces seed
004's ``build_agent_context`` lines exactly (with the date, the right strategy and the entry
regime added), never reads the outcome columns (a mapping that raises on them; changing them
changes no byte), the stable trade ids, the entry regime equal to the regime model's label on the
entry date and unchanged when the bars stop at that date (no look-ahead), a trade's own regime
kept; the strict reply parser (valid, fenced and in-prose JSON; every bad field named); the
prompt files (the seed's prompt verbatim, a user's folder overriding and adding, unknown names
listed)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from research.config import PATHS
from research.data.loaders import load
from research.llm.context import (
    ENTRY_FIELDS,
    OUTCOME_FIELDS,
    build_context,
    entry_regimes,
    strategy,
    trade_ids,
)
from research.llm.prompts import BUILTIN_DIR, available, load_prompts
from research.llm.replies import BadReply, Decision, parse_reply

SEED_PROMPT = """You are a fund manager evaluating a credit spread trade.
Given the market context, decide whether to approve or reject this trade.
Return JSON: {"decision": "approve"|"reject", "confidence": 0.0-1.0, "contracts": 1-5, "reason": "..."}
"""  # noqa: E501
"""Seed 004's ``FUND_MANAGER_PROMPT``, verbatim."""

SEED_JSON_LINE = (
    'Return JSON: {"decision": "approve"|"reject", "confidence": 0.0-1.0, "contracts": 1-5, '
    '"reason": "..."}'
)


def seed_build_agent_context(trade: dict) -> str:
    """Seed 004's ``build_agent_context``, verbatim (it always says Bear Call Spread)."""
    return f"""
Market Context:
- Underlying: {trade["ticker"]} at ${trade["underlying_price"]:.2f}
- VIX: {trade["vix"]:.1f}
- IV Percentile: {trade["iv_percentile"]:.1f}%

Trade Details:
- Strategy: Bear Call Spread
- Short Strike: ${trade["short_strike"]:.2f} (delta: {trade["delta"]:.3f})
- Long Strike: ${trade["long_strike"]:.2f}
- Expiration: {trade["expiration"]} ({trade["dte"]} DTE)
- Credit: ${trade["credit"]:.2f}
- Max Loss: ${trade["max_loss"]:.2f}
- Risk/Reward: {trade["max_loss"] / trade["credit"]:.1f}:1
"""


BEAR_CALL = {
    "date": "2022-03-15",
    "ticker": "QQQ",
    "short_strike": 360.0,
    "long_strike": 365.0,
    "expiration": "2022-04-14",
    "credit": 0.85,
    "max_loss": 4.15,
    "delta": 0.1234,
    "dte": 30,
    "iv_percentile": 82.46,
    "vix": 28.34,
    "underlying_price": 341.57,
    "outcome": "loss",
    "pnl": -415.0,
    "exit_reason": "stop_loss",
    "hold_days": 9,
}

EXPECTED = """Date: 2022-03-15
Market Context:
- Underlying: QQQ at $341.57
- VIX: 28.3
- IV Percentile: 82.5%

Trade Details:
- Strategy: Bear Call Spread
- Short Strike: $360.00 (delta: 0.123)
- Long Strike: $365.00
- Expiration: 2022-04-14 (30 DTE)
- Credit: $0.85
- Max Loss: $4.15
- Risk/Reward: 4.9:1
"""


class OutcomeGuard(Mapping[str, Any]):
    """A trade row that fails the test the moment an outcome column is read."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self._row = dict(row)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key in OUTCOME_FIELDS:
            raise AssertionError(f"the context read the outcome column {key!r}")
        self.read.append(key)
        return self._row[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._row else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._row)

    def __len__(self) -> int:
        return len(self._row)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return load("trades", PATHS.sample / "trades.json")


@pytest.fixture(scope="module")
def market_labels(sample: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    from research.data.overview import load_market
    from research.regimes import classify, load_ruleset

    market = load_market(None, None, symbols=sorted(set(sample["ticker"])))
    return market, classify("vix_trend", market.bars, market.iv, load_ruleset(None))


# --------------------------------------------------------------------------- build_context


def test_context_is_the_seeds_lines_exactly() -> None:
    text = build_context(BEAR_CALL)
    assert text == EXPECTED
    # after the date line, line for line what the seed's function writes for the same trade
    assert text.splitlines()[1:] == seed_build_agent_context(BEAR_CALL).strip("\n").splitlines()


def test_regime_line_goes_after_iv_and_nothing_else_changes() -> None:
    text = build_context(BEAR_CALL, "HIGH_VOL_BEARISH")
    lines = text.splitlines()
    assert lines[5] == "- Market regime: HIGH_VOL_BEARISH"
    assert lines[4] == "- IV Percentile: 82.5%"
    assert "\n".join(lines[:5] + lines[6:]) + "\n" == EXPECTED
    # no regime (None or empty) is no line
    assert build_context(BEAR_CALL, None) == build_context(BEAR_CALL, "") == EXPECTED


def test_context_from_timestamps_and_numpy_values_is_the_same() -> None:
    row = pd.Series(BEAR_CALL).to_dict()
    row["date"] = pd.Timestamp("2022-03-15")
    row["expiration"] = pd.Timestamp("2022-04-14")
    frame = pd.DataFrame([row])
    as_pandas = {str(k): v for k, v in frame.iloc[0].items()}  # numpy scalars, as the harness
    assert build_context(as_pandas) == EXPECTED


def test_context_never_reads_the_outcome() -> None:
    guard = OutcomeGuard(BEAR_CALL)
    assert build_context(guard, "LOW_VOL_BULLISH").startswith("Date: 2022-03-15\n")
    assert set(guard.read) == set(ENTRY_FIELDS)
    # other outcomes, and no outcome at all: byte-identical
    base = build_context(BEAR_CALL, "X")
    for change in (
        {"outcome": "profit", "pnl": 85.0, "exit_reason": "profit_target", "hold_days": 1},
        {"outcome": "breakeven", "pnl": 0.0, "exit_reason": "expiration", "hold_days": 30},
    ):
        assert build_context({**BEAR_CALL, **change}, "X").encode() == base.encode()
    without = {k: v for k, v in BEAR_CALL.items() if k not in OUTCOME_FIELDS}
    assert build_context(without, "X").encode() == base.encode()


def test_strategy_bear_call_and_bull_put() -> None:
    assert strategy(360.0, 365.0) == "Bear Call Spread"
    assert strategy(345.0, 340.0) == "Bull Put Spread"
    bull_put = {**BEAR_CALL, "short_strike": 330.0, "long_strike": 325.0}
    lines = build_context(bull_put).splitlines()
    assert lines[7:10] == [
        "- Strategy: Bull Put Spread",
        "- Short Strike: $330.00 (delta: 0.123)",
        "- Long Strike: $325.00",
    ]


def test_sample_trade_context(sample: pd.DataFrame) -> None:
    row = {str(k): v for k, v in sample.iloc[1].items()}
    assert build_context(row, "NORMAL_VOL_BULLISH") == (
        "Date: 2014-01-02\n"
        "Market Context:\n"
        "- Underlying: SPX at $1831.98\n"
        "- VIX: 13.2\n"
        "- IV Percentile: 24.2%\n"
        "- Market regime: NORMAL_VOL_BULLISH\n"
        "\n"
        "Trade Details:\n"
        "- Strategy: Bear Call Spread\n"
        "- Short Strike: $1892.50 (delta: 0.104)\n"
        "- Long Strike: $1920.00\n"
        "- Expiration: 2014-02-03 (32 DTE)\n"
        "- Credit: $1.76\n"
        "- Max Loss: $25.74\n"
        "- Risk/Reward: 14.6:1\n"
    )


# --------------------------------------------------------------------------- trade ids


def test_trade_ids_format_and_stability(sample: pd.DataFrame) -> None:
    ids = trade_ids(sample)
    assert ids.iloc[0] == "2014-01-02-IXIC-4310-4370-2014-02-03"
    assert ids.iloc[1] == "2014-01-02-SPX-1892.5-1920-2014-02-03"
    assert ids.is_unique and len(ids) == 1100
    assert list(ids.index) == list(sample.index)
    # the same from string dates, and following the rows when they are reordered
    strings = sample.head(20).assign(
        date=sample["date"].head(20).dt.strftime("%Y-%m-%d"),
        expiration=sample["expiration"].head(20).dt.strftime("%Y-%m-%d"),
    )
    assert trade_ids(strings).tolist() == ids.head(20).tolist()
    shuffled = sample.head(20).iloc[::-1]
    assert trade_ids(shuffled).tolist() == ids.head(20).tolist()[::-1]
    # a trade_id column wins
    own = sample.head(3).assign(trade_id=[7, 8, 9])
    assert trade_ids(own).tolist() == ["7", "8", "9"]


# --------------------------------------------------------------------------- entry regimes


def test_entry_regime_is_the_models_label_on_the_entry_date(
    sample: pd.DataFrame, market_labels: tuple[Any, pd.DataFrame]
) -> None:
    _, labels = market_labels
    got = entry_regimes(sample, labels)
    lookup = {
        (pd.Timestamp(d), s): r
        for d, s, r in labels[["date", "symbol", "regime"]].itertuples(index=False)
    }
    want = [
        lookup[(pd.Timestamp(d), t)] for d, t in zip(sample["date"], sample["ticker"], strict=True)
    ]
    assert got.tolist() == want
    assert got.notna().all() and got.nunique() >= 10
    assert list(got.index) == list(sample.index)


@pytest.mark.parametrize("i", [0, 150, 400, 777, 1099])
def test_entry_regime_has_no_look_ahead(
    i: int, sample: pd.DataFrame, market_labels: tuple[Any, pd.DataFrame]
) -> None:
    """The label from bars and IV cut at the entry date equals the one from the full history."""
    from research.regimes import classify, load_ruleset

    market, labels = market_labels
    trade = sample.iloc[[i]]
    date = trade["date"].iloc[0]
    full = entry_regimes(trade, labels).iloc[0]
    cut = classify(
        "vix_trend",
        market.bars[market.bars["date"] <= date],
        market.iv[market.iv["date"] <= date],
        load_ruleset(None),
    )
    assert cut["date"].max() == date  # the cut really ends on the entry date
    assert entry_regimes(trade, cut).iloc[0] == full
    assert isinstance(full, str) and "_VOL_" in full


def test_own_regime_is_kept_and_unlabelled_dates_give_none(
    sample: pd.DataFrame, market_labels: tuple[Any, pd.DataFrame]
) -> None:
    _, labels = market_labels
    trades = sample.head(6).copy()
    from_labels = entry_regimes(trades, labels)
    trades["regime"] = [None, "MY_OWN_REGIME", None, None, "ANOTHER", None]
    got = entry_regimes(trades, labels)
    assert got.iloc[1] == "MY_OWN_REGIME" and got.iloc[4] == "ANOTHER"
    keep = [0, 2, 3, 5]
    assert got.iloc[keep].tolist() == from_labels.iloc[keep].tolist()
    # a Saturday has no label: None, not NaN
    sat = sample.head(1).assign(date=pd.Timestamp("2014-01-04"))
    assert entry_regimes(sat, labels).tolist() == [None]


# --------------------------------------------------------------------------- replies


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            '{"decision": "Approve", "confidence": 0.7, "contracts": 2, "reason": "ok"}',
            Decision("approve", 0.7, 2, "ok"),
        ),
        (
            '```json\n{"decision": "reject", "confidence": 0.25, "contracts": 1}\n```',
            Decision("reject", 0.25, 1, ""),
        ),
        (
            '```\n{"decision": "approve", "confidence": 0, "contracts": 5, "reason": "r"}\n```',
            Decision("approve", 0.0, 5, "r"),
        ),
        (
            'Sure. Here is my answer: {"decision": " REJECT ", "confidence": 1, "contracts": 3.0,'
            ' "reason": "vol {too} high"} Hope it helps.',
            Decision("reject", 1.0, 3, "vol {too} high"),
        ),
    ],
)
def test_parse_valid_replies(text: str, want: Decision) -> None:
    got = parse_reply(text)
    assert got == want
    assert type(got.confidence) is float and type(got.contracts) is int


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "empty reply"),
        ("", "empty reply"),
        ("  \n ", "empty reply"),
        ("I would approve this trade.", "no JSON object"),
        ('prose {"decision": } prose', "malformed JSON"),
        ("[1, 2]", "not an object (list)"),
        ('"approve"', "not an object (str)"),
        ('{"decision": "maybe", "confidence": 0.5, "contracts": 1}', "decision must be"),
        ('{"confidence": 0.5, "contracts": 1}', "decision must be"),
        ('{"decision": "approve", "confidence": 1.5, "contracts": 1}', "confidence must be"),
        ('{"decision": "approve", "confidence": -0.1, "contracts": 1}', "confidence must be"),
        ('{"decision": "approve", "confidence": "high", "contracts": 1}', "confidence must be"),
        ('{"decision": "approve", "confidence": true, "contracts": 1}', "confidence must be"),
        ('{"decision": "approve", "confidence": NaN, "contracts": 1}', "confidence must be"),
        ('{"decision": "approve", "contracts": 1}', "confidence must be"),
        ('{"decision": "approve", "confidence": 0.5, "contracts": 0}', "contracts must be"),
        ('{"decision": "approve", "confidence": 0.5, "contracts": 6}', "contracts must be"),
        ('{"decision": "approve", "confidence": 0.5, "contracts": 2.5}', "contracts must be"),
        ('{"decision": "approve", "confidence": 0.5, "contracts": "3"}', "contracts must be"),
        ('{"decision": "approve", "confidence": 0.5, "contracts": true}', "contracts must be"),
        ('{"decision": "approve", "confidence": 0.5}', "contracts must be"),
    ],
)
def test_parse_bad_replies_name_the_field(text: str | None, message: str) -> None:
    with pytest.raises(BadReply) as info:
        parse_reply(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_reply_messages_show_the_value() -> None:
    with pytest.raises(BadReply, match=r"got 'maybe'"):
        parse_reply('{"decision": "maybe", "confidence": 2}')
    with pytest.raises(BadReply, match=r"got 1\.5"):
        parse_reply('{"decision": "approve", "confidence": 1.5, "contracts": 1}')
    with pytest.raises(BadReply, match=r"got '3'"):
        parse_reply('{"decision": "approve", "confidence": 0.5, "contracts": "3"}')


# --------------------------------------------------------------------------- prompts


def test_builtin_prompts() -> None:
    got = load_prompts(["balanced", "aggressive", "conservative"])
    assert [p.name for p in got] == ["balanced", "aggressive", "conservative"]
    balanced, aggressive, conservative = (p.text for p in got)
    assert balanced == SEED_PROMPT.strip()
    assert SEED_JSON_LINE in balanced.splitlines()
    assert SEED_JSON_LINE in aggressive.splitlines() and SEED_JSON_LINE in conservative
    assert "Approve unless there is a clear structural flaw." in aggressive
    assert "Reject unless the setup is exceptional." in conservative
    assert all(p.path.parent == BUILTIN_DIR for p in got)
    assert sorted(available()) == ["aggressive", "balanced", "conservative"]


def test_user_prompts_override_and_add(tmp_path: Path) -> None:
    (tmp_path / "balanced.md").write_text("My own balanced prompt.\n\n")
    (tmp_path / "terse.txt").write_text("  Answer in JSON only.\n")
    got = {p.name: p for p in load_prompts(["balanced", "terse", "conservative"], tmp_path)}
    assert got["balanced"].text == "My own balanced prompt."
    assert got["balanced"].path == tmp_path / "balanced.md"
    assert got["terse"].text == "Answer in JSON only."
    assert got["conservative"].path.parent == BUILTIN_DIR
    assert sorted(available(tmp_path)) == ["aggressive", "balanced", "conservative", "terse"]
    # the built-in one is untouched for a run without the folder
    assert load_prompts(["balanced"])[0].text == SEED_PROMPT.strip()


def test_prompt_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        load_prompts(["balanced", "nope"])
    assert (
        str(info.value) == "no prompt 'nope' (prompts: ['aggressive', 'balanced', 'conservative'])"
    )
    (tmp_path / "empty.md").write_text(" \n")
    with pytest.raises(ValueError, match="empty.md: the prompt file is empty"):
        load_prompts(["empty"], tmp_path)
    with pytest.raises(ValueError, match="no such prompts folder"):
        load_prompts(["balanced"], tmp_path / "missing")
