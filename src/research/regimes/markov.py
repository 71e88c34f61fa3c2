"""``markov`` (the regime-configuration plan's HMM): Markov-switching regression on daily log
returns.

Model
    ``statsmodels`` ``MarkovRegression(y, k_regimes=k, trend="c", switching_variance=True)``:
    ``y_t = mu_{S_t} + e_t``, ``e_t ~ N(0, sigma2_{S_t})``, ``S_t`` a first-order Markov chain
    with ``k`` states (``rules.markov.k_regimes``, 2 or 3). ``y`` is the daily log return in
    percent (x100, for numerical stability of the optimiser); every reported feature is converted
    back to plain daily log-return units (fractions, not annualised). Each fit is run from two
    start points, statsmodels' default and persistent regimes (:func:`persistent_start`), and the
    higher likelihood is kept: the default start alone often stops in a non-persistent local
    optimum on short windows, and for k = 3 fails to converge (see :func:`fit_markov`).

Expanding-window refits, no look-ahead
    Positions are bar rows ``0 .. n-1`` of the one symbol; the return of row ``t`` is
    ``log(close_t / close_{t-1})`` (NaN on row 0). Refit points are ``p = min_train_bars,
    min_train_bars + refit_every_bars, ...`` (anchored at the first bar, so appending bars never
    moves them; ``range(min_train, n + 1, every)`` where a point equal to ``n`` would label no row
    and is therefore not fitted). The fit at ``p`` uses the bars strictly before ``p`` (closes
    ``0 .. p-1``, i.e. ``p - 1`` returns). Its parameters are then held fixed and the Hamilton
    filter (``model.filter(params)``) is run on the returns of rows ``1 .. q-1`` (``q`` the next
    refit point or ``n``); the *filtered* marginal probabilities ``P(S_s | y_1..y_s)`` of rows
    ``p .. q-1`` are used. Smoothed probabilities are never used, so no value at row t depends on
    a bar after t. Rows before the first refit point are ``warmup`` (regime NaN); with fewer than
    ``min_train_bars + 1`` bars every row is ``warmup`` (:func:`compute` returns that;
    ``registry.classify`` refuses such input, see :func:`min_history`).

Stable labels
    The states of every fit are ordered by variance, ascending: state 0 is the calmest. ``k = 2``:
    ``calm, turbulent``; ``k = 3``: ``calm, normal, turbulent``; ``vol_dim`` low / normal / high
    from the most probable ordered state. Trend: the filtered expected mean
    ``E[mu | y_1..y_t] = sum_k p_k(t) mu_k``; ``trend_dim`` ``up`` if it is > 0 else ``down``.
    Label ``f"{vol}_{bull|bear}"``, e.g. ``calm_bull``, ``turbulent_bear``.

Failed fits
    A fit that raises, returns non-finite parameters or a non-positive variance is a failure: the
    previous fit's parameters are kept for that block and its rows are flagged ``refit_failed``;
    with no previous fit the block's regime is NaN, flagged ``refit_failed``. Optimiser warnings
    (convergence, overflow) are silenced. A fit that stops at ``maxiter`` without converging is
    still used (``MarkovFit.converged`` records it; it is not flagged).

Runtime
    Full SPX history 1999-2018 with the defaults (k = 2, 18 refits): about 17 s per symbol.
    k = 3 is much slower (12 parameters, numerical gradients): several minutes per symbol.

Randomness
    With ``rules.markov.search_reps > 0`` statsmodels' random start-parameter search is used; its
    ``fit`` takes an ``rng`` argument, so each refit gets its own
    ``numpy.random.default_rng([seed, p])`` (a function of the seed and the refit point only: the
    same fit gives the same result whatever bars follow it). No global random state is touched.
    With ``search_reps = 0`` (default) the fit is deterministic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from research._typing import FloatArray
from research.regimes.base import ModelSpec, add_flag, empty_frame, log_returns
from research.regimes.ruleset import Ruleset

SCALE = 100.0
"""Returns are fitted in percent (log return x 100); reported features are divided back."""

VOL_NAMES: dict[int, tuple[str, ...]] = {
    2: ("calm", "turbulent"),
    3: ("calm", "normal", "turbulent"),
}
_VOL_DIM = {"calm": "low", "normal": "normal", "turbulent": "high"}


def labels_for(k: int) -> tuple[str, ...]:
    """Every label a ``k``-state model can give, low risk first.

    Parameters
    ----------
    k
        Number of regimes, 2 or 3.

    Returns
    -------
    tuple of str
        ``calm_bull, calm_bear, (normal_bull, normal_bear,) turbulent_bull, turbulent_bear``.
    """
    if k not in VOL_NAMES:
        raise ValueError(f"markov: k_regimes must be 2 or 3, got {k}")
    return tuple(f"{v}_{t}" for v in VOL_NAMES[k] for t in ("bull", "bear"))


LABELS: tuple[str, ...] = labels_for(3)
"""All labels over k = 2 and 3 (k = 2 never gives ``normal_*``)."""


@dataclass(frozen=True, eq=False)
class MarkovFit:
    """One Markov-switching fit, states ordered by variance (state 0 the calmest).

    Attributes
    ----------
    means, variances
        Per-state mean and variance of the fitted series, in its units, shape ``(k,)``.
    transition
        ``P[i, j] = P(S_t = j | S_{t-1} = i)``, shape ``(k, k)``; rows sum to one.
    expected_durations
        ``1 / (1 - P[i, i])`` in bars (inf for an absorbing state).
    loglike
        Maximised log-likelihood.
    converged
        Whether the optimiser reported convergence (parameters are usable either way).
    order
        ``order[i]`` is statsmodels' state number of ordered state ``i``.
    raw_params
        The parameters in statsmodels' own order and state numbering (for ``model.filter``).
    """

    means: FloatArray
    variances: FloatArray
    transition: FloatArray
    expected_durations: FloatArray
    loglike: float
    converged: bool
    order: tuple[int, ...]
    raw_params: FloatArray

    @property
    def k(self) -> int:
        """Number of states."""
        return len(self.means)


def _model(returns: np.ndarray, k: int) -> MarkovRegression:
    return MarkovRegression(
        np.asarray(returns, dtype=float), k_regimes=k, trend="c", switching_variance=True
    )


def _index(names: list[str], prefix: str, k: int) -> list[int]:
    return [names.index(f"{prefix}[{i}]") for i in range(k)]


STAY = 0.98
"""Probability of staying in a state in the persistent start values (see :func:`fit_markov`)."""


def persistent_start(returns: FloatArray, k: int) -> FloatArray:
    """Start values for persistent regimes, in statsmodels' parameter order.

    Every state stays with probability :data:`STAY` (the rest spread evenly over the other
    states), every mean is the sample mean, and the variances are spread geometrically around
    the sample variance (``v/2, 2v`` for k = 2; ``v/3 .. 3v`` for k = 3).

    Parameters
    ----------
    returns
        The series to be fitted.
    k
        Number of regimes.

    Returns
    -------
    numpy.ndarray
        ``p[j->i]`` (i < k - 1), ``const[i]``, ``sigma2[i]`` as in ``MarkovRegression``.
    """
    y = np.asarray(returns, dtype=float)
    names = list(_model(y, k).param_names)
    spread = 2.0 if k == 2 else float(k)
    variances = y.var() * np.geomspace(1.0 / spread, spread, k)
    params = np.empty(len(names))
    for pos, name in enumerate(names):
        if name.startswith("p["):
            j, i = (int(x) for x in name[2:-1].split("->"))
            params[pos] = STAY if i == j else (1.0 - STAY) / (k - 1)
        elif name.startswith("const["):
            params[pos] = y.mean()
        else:  # sigma2[i]
            params[pos] = variances[int(name[len("sigma2[") : -1])]
    return params


def _fit_once(model: MarkovRegression, k: int, kwargs: dict[str, object]) -> MarkovFit:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            res = model.fit(**kwargs)
        except Exception as exc:  # statsmodels/scipy raise many types (LinAlgError, ...)
            raise ValueError(f"markov: fit failed ({type(exc).__name__}: {exc})") from exc
        params = np.asarray(res.params, dtype=float)
        llf = float(res.llf)
        converged = bool(res.mle_retvals.get("converged", False))
        rt = np.asarray(model.regime_transition_matrix(params))[:, :, 0]
    names = list(model.param_names)
    const = params[_index(names, "const", k)]
    sigma2 = params[_index(names, "sigma2", k)]
    if not (np.isfinite(params).all() and np.isfinite(llf) and (sigma2 > 0).all()):
        raise ValueError(f"markov: fit returned unusable parameters {params.tolist()}")
    order = np.argsort(sigma2, kind="stable")
    transition = rt.T[np.ix_(order, order)]  # statsmodels: rt[i, j] = P(j -> i)
    diag = np.diag(transition)
    with np.errstate(divide="ignore"):
        durations = np.where(diag < 1, 1.0 / (1.0 - diag), np.inf)
    return MarkovFit(
        means=const[order],
        variances=sigma2[order],
        transition=transition,
        expected_durations=durations,
        loglike=llf,
        converged=converged,
        order=tuple(int(i) for i in order),
        raw_params=params,
    )


def fit_markov(
    returns: FloatArray,
    k: int,
    *,
    search_reps: int = 0,
    rng: np.random.Generator | None = None,
    start_params: np.ndarray | None = None,
    maxiter: int = 100,
) -> MarkovFit:
    """Fit a ``k``-state switching mean and variance model to ``returns`` by maximum likelihood.

    Without ``start_params`` two fits are run and the one with the higher log-likelihood is kept
    (the first on a tie): one from statsmodels' default start values and one from
    :func:`persistent_start`. statsmodels' default start (equal transition probabilities) often
    ends in a non-persistent local optimum on short windows (e.g. SPX 1999-2001: P(stay calm) = 0,
    log-likelihood 12 lower than the persistent optimum), and for k = 3 it regularly fails to
    converge in 100 iterations; the persistent start finds the better optimum there.

    Parameters
    ----------
    returns
        1-D returns, oldest first, finite; best scaled to order 1 (e.g. percent log returns).
    k
        Number of regimes (>= 2).
    search_reps
        Random start-parameter search repetitions (statsmodels ``search_reps``) around each
        start; 0 = none.
    rng
        Generator for the search (statsmodels ``fit(rng=...)``); only used when
        ``search_reps > 0``.
    start_params
        Start values in statsmodels' order (e.g. a previous fit's ``raw_params``): one fit from
        there only.
    maxiter
        Maximum BFGS iterations per fit.

    Returns
    -------
    MarkovFit
        Parameters with states ordered by variance ascending.

    Raises
    ------
    ValueError
        When every fit fails: statsmodels raises, or the parameters are not finite or a variance
        is not positive.
    """
    y = np.asarray(returns, dtype=float)
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError("markov: returns must be a 1-D array of finite values")
    model = _model(y, k)
    kwargs: dict[str, object] = {"maxiter": maxiter}
    if search_reps > 0:
        kwargs.update(search_reps=search_reps, rng=rng)
    if start_params is not None:
        return _fit_once(model, k, {**kwargs, "start_params": np.asarray(start_params, float)})
    best: MarkovFit | None = None
    error: ValueError | None = None
    starts: list[np.ndarray | None] = [None]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            starts.append(persistent_start(y, k))
        except Exception:  # degenerate data (e.g. empty): statsmodels' default start only
            pass
    for start in starts:
        try:
            fit = _fit_once(
                model, k, kwargs if start is None else {**kwargs, "start_params": start}
            )
        except ValueError as exc:
            error = error or exc
            continue
        if best is None or fit.loglike > best.loglike:
            best = fit
    if best is None:
        assert error is not None
        raise error
    return best


def filtered_probabilities(returns: FloatArray, fit: MarkovFit) -> FloatArray:
    """Hamilton-filtered state probabilities of ``returns`` under ``fit``'s fixed parameters.

    Parameters
    ----------
    returns
        1-D returns in the units ``fit`` was estimated in, oldest first.
    fit
        A :func:`fit_markov` result.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(returns), k)``, columns in ``fit``'s (variance) order; row s is
        ``P(S_s | returns[0..s])``, so it depends on no later return. Filtered (statsmodels'
        ``filtered_marginal_probabilities``), never smoothed.
    """
    model = _model(returns, fit.k)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = model.filter(fit.raw_params)
    probs = np.asarray(res.filtered_marginal_probabilities, dtype=float)
    return probs[:, list(fit.order)]


def refit_points(n_bars: int, min_train_bars: int, refit_every_bars: int) -> list[int]:
    """Bar rows at which a fit starts being used (each fit uses the bars before it).

    Parameters
    ----------
    n_bars
        Number of bars of the symbol.
    min_train_bars, refit_every_bars
        From :class:`~research.regimes.ruleset.MarkovRules`.

    Returns
    -------
    list of int
        ``min_train_bars, min_train_bars + refit_every_bars, ...`` below ``n_bars`` (a point
        equal to ``n_bars`` labels no bar, so it is not fitted).
    """
    return list(range(min_train_bars, n_bars, refit_every_bars))


def min_history(rules: Ruleset, symbol: str | None = None) -> tuple[int, str]:
    """``min_train_bars + 1`` bars: the first fit uses the ``min_train_bars`` bars before row
    ``min_train_bars``, the first row labelled (if that fit succeeds)."""
    m = rules.markov.min_train_bars
    return m + 1, f"min_train_bars {m} (+1 bar: the first labelled row follows them)"


def _seed_rng(seed: int, point: int) -> np.random.Generator:
    return np.random.default_rng([seed, point])


def cached_fit(
    returns: FloatArray, k: int, *, search_reps: int, seed: int, point: int
) -> MarkovFit:
    """:func:`fit_markov` of one refit window, through the disk cache of
    :mod:`research.regimes.fit_cache` (same window and settings: the stored fit)."""
    from research.regimes import fit_cache

    searched = search_reps > 0  # without a random search the fit depends on the window only
    key = fit_cache.fit_key(
        returns,
        k=k,
        search_reps=search_reps,
        seed=seed if searched else None,
        point=point if searched else None,
    )
    return fit_cache.cached(
        key,
        lambda: fit_markov(
            returns,
            k,
            search_reps=search_reps,
            rng=_seed_rng(seed, point) if searched else None,
        ),
    )


def compute(bars: pd.DataFrame, iv: pd.Series | None, rules: Ruleset) -> pd.DataFrame:
    """Classify one symbol's bars (sorted by date) with expanding-window Markov fits.

    Parameters
    ----------
    bars
        One symbol's bars contract rows, oldest first.
    iv
        Unused (the model needs no IV index).
    rules
        ``rules.markov`` gives ``k_regimes``, ``min_train_bars``, ``refit_every_bars``,
        ``search_reps`` and ``seed``.

    Returns
    -------
    pandas.DataFrame
        Aligned with ``bars``: ``regime, trend_dim, vol_dim, flag`` plus ``ret`` (daily log
        return), ``expected_mean`` (filtered expected mean return, daily log-return units),
        ``prob_state0 .. prob_state{k-1}`` (filtered, ordered by variance), ``state_sigma``
        (standard deviation of the most probable state, daily log-return units) and
        ``refit_date`` (date of the last bar in the training window of the fit whose parameters
        were used).
    """
    m = rules.markov
    k = m.k_regimes
    vol_names = VOL_NAMES[k] if k in VOL_NAMES else tuple(f"state{i}" for i in range(k))
    n = len(bars)
    out = empty_frame(n)
    ret = log_returns(bars["close"]).to_numpy(float)
    dates = pd.to_datetime(bars["date"]).to_numpy("datetime64[ns]")
    y = ret * SCALE

    probs = np.full((n, k), np.nan)
    means = np.full(n, np.nan)  # E[mu], percent
    sigma = np.full(n, np.nan)  # sd of the most probable state, percent
    refit_date = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    failed = np.zeros(n, dtype=bool)

    points = refit_points(n, m.min_train_bars, m.refit_every_bars)
    warmup = np.ones(n, dtype=bool)
    if points:
        warmup[points[0] :] = False
    fit: MarkovFit | None = None
    fit_date = np.datetime64("NaT")
    for i, p in enumerate(points):
        q = points[i + 1] if i + 1 < len(points) else n
        try:
            fit = cached_fit(y[1:p], k, search_reps=m.search_reps, seed=m.seed, point=p)
            fit_date = dates[p - 1]
        except ValueError:
            failed[p:q] = True
            if fit is None:
                continue
        block = filtered_probabilities(y[1:q], fit)[p - 1 :]
        probs[p:q] = block
        # state by state, not ``block @ fit.means``: BLAS may round a matrix product differently
        # for different row counts, and a row's value must not depend on how many rows follow
        means[p:q] = sum(block[:, j] * fit.means[j] for j in range(k))
        state = np.argmax(block, axis=1)
        sigma[p:q] = np.sqrt(fit.variances[state])
        refit_date[p:q] = fit_date

    known = np.isfinite(probs).all(axis=1)
    state = np.argmax(np.where(known[:, None], probs, 0.0), axis=1)[known]
    up = means[known] > 0
    vol = [vol_names[s] for s in state]
    out.loc[known, "regime"] = [
        f"{v}_{'bull' if u else 'bear'}" for v, u in zip(vol, up, strict=True)
    ]
    out.loc[known, "trend_dim"] = np.where(up, "up", "down").astype(object)
    out.loc[known, "vol_dim"] = [_VOL_DIM.get(v, np.nan) for v in vol]
    out["flag"] = add_flag(out["flag"], warmup, "warmup")
    out["flag"] = add_flag(out["flag"], failed, "refit_failed")
    out["ret"] = ret
    out["expected_mean"] = means / SCALE
    for j in range(k):
        out[f"prob_state{j}"] = probs[:, j]
    out["state_sigma"] = sigma / SCALE
    out["refit_date"] = refit_date
    return out


SPEC = ModelSpec(
    name="markov",
    uses_iv=False,
    labels=LABELS,
    compute=compute,
    description=(
        "Markov-switching mean/variance model on daily log returns "
        "(the regime-configuration plan's HMM): "
        "calm/(normal/)turbulent by variance x bull/bear by filtered expected mean; "
        "expanding-window refits, filtered probabilities only"
    ),
    min_history=min_history,
)
