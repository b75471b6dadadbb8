"""The `workload:` block of a scenario: arrivals (open or closed loop), length distributions,
trace replay.

Validated here like every other block (`Strict` models, errors naming the key). A length
distribution knows how to draw from itself and its own mean and variance (`sim.workload`
adds the cap, the floor at 1 token and the counts, the same for every one); arrivals are
drawn in `sim.workload`, and trace files are read at scenario-loading time.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Mapping
from itertools import pairwise
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sim.errors import InputError
from sim.scenario.base import (
    MAX_DURATION_S,
    MAX_LIST_ITEMS,
    MAX_LOG_SIGMA,
    MAX_MULTIPLIER,
    MAX_TOKEN_COUNT,
    Multiplier,
    NonNeg,
    NonNegSeconds,
    Pos,
    Rate,
    Seconds,
    Strict,
    TokenCount,
    check_curve_bounds,
    check_order,
    known_name,
    tag_values,
)
from sim.scenario.traces import (
    TIMESTAMP_UNITS,
    TRACE_FORMATS,
    Trace,
    TraceFile,
    requests_for,
)
from sim.scenario.uncertain import Lognormal, Triangular, Uniform

# Token-length parameters: a mean of at most MAX_TOKEN_COUNT, a log-space spread of at most
# MAX_LOG_SIGMA (beyond it exp(sigma²) overflows and every draw is 0 or inf).
MeanTokens = Annotated[float, Field(gt=0, le=MAX_TOKEN_COUNT, allow_inf_nan=False)]
LogSigma = Annotated[float, Field(ge=0, le=MAX_LOG_SIGMA, allow_inf_nan=False)]
# A gamma renewal process from t = 0 starts with a burst of about cv²/2 extra arrivals, and at
# cv 1e6 its gaps underflow to 0 (the arrival loop never reaches the horizon); at cv 100 the
# burst is ~5,000 requests and the draws stay meaningful.
MAX_GAMMA_CV = 100.0

# ---- lengths -------------------------------------------------------------------------------


class _Lengths(Strict):
    """A token-length distribution: it draws raw samples (`draw`) and knows its mean and
    variance, so capacity estimates need no sampling. Cutting at `max_tokens`, raising what
    rounds below 1 token, and counting both are shared (`sim.workload.lengths`). The moments
    are of the distribution as written: before rounding, the floor and the cap."""

    max_tokens: TokenCount | None = None  # named cap: longer samples are cut to it, counted

    @abstractmethod
    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n samples in tokens, before the floor and the cap (floats or integers)."""

    @property
    @abstractmethod
    def mean_tokens(self) -> float:
        """The mean, in tokens (exact, not sampled)."""

    @property
    @abstractmethod
    def variance_tokens(self) -> float:
        """The variance, in tokens² (exact, not sampled)."""


class FixedLengths(_Lengths):
    dist: Literal["fixed"]
    value: TokenCount

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.float64)

    @property
    def mean_tokens(self) -> float:
        return float(self.value)

    @property
    def variance_tokens(self) -> float:
        return 0.0


class UniformLengths(_Lengths):
    """Every whole number of tokens from low to high (both included) equally likely."""

    dist: Literal["uniform"]
    low: TokenCount
    high: TokenCount

    @model_validator(mode="after")
    def _ordered(self) -> UniformLengths:
        check_order(self.low, self.high, "high", "low")
        return self

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.low, self.high, size=n, endpoint=True)

    @property
    def mean_tokens(self) -> float:
        return (self.low + self.high) / 2.0

    @property
    def variance_tokens(self) -> float:
        values = self.high - self.low + 1  # a discrete uniform over this many
        return (values**2 - 1) / 12.0


class LognormalLengths(_Lengths):
    dist: Literal["lognormal"]
    mean: MeanTokens  # mean of the distribution, in tokens (not the log-space mu)
    sigma: LogSigma  # standard deviation of log(tokens)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # `mean` is the distribution's mean, so mu = ln(mean) − sigma²/2.
        mu = np.log(self.mean) - self.sigma**2 / 2.0
        return np.rint(rng.lognormal(mu, self.sigma, n))

    @property
    def mean_tokens(self) -> float:
        return float(self.mean)

    @property
    def variance_tokens(self) -> float:
        return float(self.mean**2 * np.expm1(self.sigma**2))


class GeometricLengths(_Lengths):
    dist: Literal["geometric"]
    mean: Annotated[float, Field(ge=1, le=MAX_TOKEN_COUNT)]  # support 1, 2, ...; p = 1/mean

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.geometric(1.0 / self.mean, n)

    @property
    def mean_tokens(self) -> float:
        return float(self.mean)

    @property
    def variance_tokens(self) -> float:
        return float(self.mean * (self.mean - 1.0))  # (1 − p) / p² with p = 1 / mean


class EmpiricalLengths(_Lengths):
    """Each sample is one of the file's values, all equally likely (repeats count)."""

    dist: Literal["empirical"]
    path: str  # text file, one positive integer per line ('#' comments allowed)
    values: np.ndarray | None = Field(default=None, exclude=True)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(self._values(), size=n)

    @property
    def mean_tokens(self) -> float:
        return float(np.mean(self._values()))

    @property
    def variance_tokens(self) -> float:
        return float(np.var(self._values()))  # of the values themselves: they are the law

    def _values(self) -> np.ndarray:
        if self.values is None:
            raise ValueError(f"the token counts of {self.path} are read by load_scenario")
        return self.values


class LognormalMixtureLengths(_Lengths):
    """Component k is drawn with probability weights[k] (normalised to sum 1): a lognormal
    with mean means[k] tokens and log-space spread sigmas[k]. Multi-modal traces need it."""

    dist: Literal["lognormal_mixture"]
    weights: Annotated[list[Pos], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    means: Annotated[list[MeanTokens], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    sigmas: Annotated[list[LogSigma], Field(min_length=1, max_length=MAX_LIST_ITEMS)]

    @model_validator(mode="after")
    def _same_length(self) -> LognormalMixtureLengths:
        for field in ("means", "sigmas"):
            if len(getattr(self, field)) != len(self.weights):
                raise PydanticCustomError(
                    "order", "one entry per component",
                    {"field": field, "expected": f"{len(self.weights)} entries, one per weight"})
        return self

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        weights = np.asarray(self.weights) / np.sum(self.weights)
        sigmas = np.asarray(self.sigmas)
        mus = np.log(self.means) - sigmas**2 / 2.0
        component = rng.choice(len(weights), size=n, p=weights)
        return np.rint(np.exp(rng.normal(mus[component], sigmas[component])))

    @property
    def mean_tokens(self) -> float:
        return float(np.dot(self.weights, self.means) / np.sum(self.weights))

    @property
    def variance_tokens(self) -> float:
        # E[X²] of a lognormal with mean m and log-space spread s is m² exp(s²).
        weights = np.asarray(self.weights) / np.sum(self.weights)
        means, sigmas = np.asarray(self.means), np.asarray(self.sigmas)
        second_moment = float(np.sum(weights * means**2 * np.exp(sigmas**2)))
        return second_moment - self.mean_tokens**2


class EmpiricalCdfLengths(_Lengths):
    """Inline empirical CDF: [[tokens, P(length ≤ tokens)], ...], linear in between; the
    first point's probability is a point mass at its length. `trace fit` writes these."""

    dist: Literal["empirical_cdf"]
    cdf: Annotated[list[list[NonNeg]], Field(min_length=2)]

    @field_validator("cdf")
    @classmethod
    def _monotone(cls, points: list[list[float]]) -> list[list[float]]:
        if any(len(point) != 2 for point in points):
            raise PydanticCustomError("cdf", "pairs", {"expected": "[tokens, probability] pairs"})
        tokens = [t for t, _ in points]
        probs = [p for _, p in points]
        ordered = all(b > a for a, b in pairwise(probs)) and all(
            b >= a for a, b in pairwise(tokens))
        if tokens[0] < 1 or probs[-1] != 1 or not ordered:
            raise PydanticCustomError(
                "cdf", "not a CDF",
                {"expected": "[tokens, probability] pairs with tokens ≥ 1 and non-decreasing, "
                 "probabilities increasing and the last one 1"})
        if tokens[-1] > MAX_TOKEN_COUNT:
            raise PydanticCustomError(
                "cdf", "too long", {"expected": f"token counts ≤ {MAX_TOKEN_COUNT:,}"})
        return points

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        tokens, probs = np.asarray(self.cdf, dtype=np.float64).T
        return np.rint(np.interp(rng.random(n), probs, tokens))  # inverse CDF

    @property
    def mean_tokens(self) -> float:
        # The first point's probability is a point mass; between points the quantile
        # function is linear (the length uniform between the two points' lengths), so each
        # piece contributes its probability × its mid-length.
        tokens, probs = np.asarray(self.cdf, dtype=np.float64).T
        pieces = np.diff(probs) * (tokens[1:] + tokens[:-1]) / 2.0
        return float(probs[0] * tokens[0] + pieces.sum())

    @property
    def variance_tokens(self) -> float:
        # A piece uniform on [a, b] has E[X²] = (a² + ab + b²) / 3.
        tokens, probs = np.asarray(self.cdf, dtype=np.float64).T
        a, b = tokens[:-1], tokens[1:]
        pieces = np.diff(probs) * (a * a + a * b + b * b) / 3.0
        second_moment = float(probs[0] * tokens[0] ** 2 + pieces.sum())
        return second_moment - self.mean_tokens**2


LengthSpec = Annotated[
    FixedLengths | UniformLengths | LognormalLengths | GeometricLengths | EmpiricalLengths
    | LognormalMixtureLengths | EmpiricalCdfLengths,
    Field(discriminator="dist"),
]
LENGTH_DISTS = tag_values(LengthSpec, "dist")


# ---- arrivals ------------------------------------------------------------------------------


class Spike(Strict):
    """The rate is multiplied by `multiplier` over [at_s, at_s + duration_s)."""

    at_s: NonNegSeconds
    duration_s: Seconds
    multiplier: Annotated[float, Field(ge=0, le=MAX_MULTIPLIER, allow_inf_nan=False)]


class PoissonArrivals(Strict):
    """Poisson arrivals; with `profile`, `rate_curve` or `spikes` the rate varies in time
    (a non-homogeneous Poisson process) and `rate_per_s` is its mean: over the 24-hour
    cycle for `profile: diurnal`, over the curve's span (first to last point) for
    `rate_curve`, which is rescaled to that mean. Spikes multiply on top."""

    process: Literal["poisson"]
    rate_per_s: Rate
    profile: Literal["diurnal"] | None = None
    peak_to_trough: Annotated[float, Field(ge=1, le=MAX_MULTIPLIER,
                                           allow_inf_nan=False)] | None = None
    peak_hour: Annotated[float, Field(ge=0, lt=24)] | None = None
    start_hour: Annotated[float, Field(ge=0, lt=24)] | None = None  # clock hour at t = 0
    rate_curve: Annotated[list[list[NonNeg]], Field(min_length=2)] | None = None
    spikes: Annotated[list[Spike], Field(max_length=MAX_LIST_ITEMS)] = []

    @model_validator(mode="after")
    def _one_shape(self) -> PoissonArrivals:
        diurnal = ("peak_to_trough", "peak_hour", "start_hour")
        for field in diurnal:
            if self.profile is None and getattr(self, field) is not None:
                raise PydanticCustomError("order", "needs profile", {
                    "field": field, "expected": "this key only with profile: diurnal"})
        if self.profile == "diurnal":
            for field in ("peak_to_trough", "peak_hour"):
                if getattr(self, field) is None:
                    raise PydanticCustomError("order", "needed by profile", {
                        "field": field, "expected": "a value (profile: diurnal needs it)"})
            if self.rate_curve is not None:
                raise PydanticCustomError("order", "one shape", {
                    "field": "rate_curve", "expected": "either profile or rate_curve, not both"})
        if self.rate_curve is not None:
            curve = self.rate_curve
            pairs = all(len(point) == 2 for point in curve)
            ordered = pairs and curve[-1][0] > curve[0][0] and all(
                b[0] >= a[0] for a, b in pairwise(curve))
            area = sum((b[0] - a[0]) * (a[1] + b[1]) for a, b in pairwise(curve)) if pairs else 0
            if not (ordered and area > 0):
                raise PydanticCustomError("order", "not a rate curve", {
                    "field": "rate_curve", "expected": "[t_s, rate_per_s] pairs with t_s "
                    "non-decreasing (repeat a time for a step), a positive span and a "
                    "positive rate somewhere"})
            check_curve_bounds(curve)
        return self


class GammaArrivals(Strict):
    """Renewal process with gamma gaps: cv > 1 is burstier than Poisson, cv < 1 smoother."""

    process: Literal["gamma"]
    rate_per_s: Rate
    cv: Annotated[float, Field(gt=0, le=MAX_GAMMA_CV, allow_inf_nan=False)]


ArrivalSpec = Annotated[PoissonArrivals | GammaArrivals, Field(discriminator="process")]

# Clients of a closed loop: a million is far beyond any benchmark's (they run hundreds to a
# few thousand); how much work a run of them is, is the budget's to check.
MAX_CONCURRENCY = 1_000_000
ThinkTimeSpec = Annotated[Lognormal | Uniform | Triangular, Field(discriminator="dist")]


ThinkTime = NonNegSeconds | ThinkTimeSpec


def mean_think_s(think: ThinkTime) -> float:
    """The mean of a think time, a number or a distribution (exact, not sampled)."""
    if isinstance(think, Lognormal):
        return float(think.mean)
    if isinstance(think, Uniform):
        return (think.low + think.high) / 2.0
    if isinstance(think, Triangular):
        return (think.low + think.mode + think.high) / 3.0
    return float(think)


def check_think_time(think: ThinkTime) -> None:
    """A think time is never negative and at most MAX_DURATION_S (a distribution's high and
    mean too): the closed loop's and the sessions' `think_time_s` alike."""
    if isinstance(think, Uniform | Triangular) and think.low < 0:
        raise PydanticCustomError("order", "negative think time", {
            "field": "think_time_s", "expected": "a distribution of times ≥ 0 (low ≥ 0)"})
    if mean_think_s(think) > MAX_DURATION_S or (
            isinstance(think, Uniform | Triangular) and think.high > MAX_DURATION_S):
        raise PydanticCustomError("order", "think time too long", {
            "field": "think_time_s", "expected": f"think times ≤ {MAX_DURATION_S:g} s "
            "(the high or mean of a distribution too)"})


class ClosedArrivals(Strict):
    """A closed loop: `concurrency` clients, each sending its next request `think_time_s`
    after its last one finished (or was rejected), as `vllm bench serve --max-concurrency`,
    genai-perf and InferenceX do. Every client sends its first request at t = 0; none sends
    at or after duration_s. `think_time_s` is a number (0: back to back) or a distribution
    drawn once per request (lognormal {mean, sigma}, uniform or triangular with low ≥ 0)."""

    process: Literal["closed"]
    concurrency: Annotated[int, Field(gt=0, le=MAX_CONCURRENCY)]
    think_time_s: ThinkTime = 0.0

    @model_validator(mode="before")
    @classmethod
    def _no_rate(cls, data: Any) -> Any:
        # Said here rather than as an unknown key: a utilisation sweep or a plan writes
        # rate_per_s into the arrival, and its user should learn why that cannot work.
        if isinstance(data, Mapping) and "rate_per_s" in data:
            raise PydanticCustomError("order", "a rate for a closed loop", {
                "field": "rate_per_s", "expected": "no rate: a closed loop's clients set "
                "their own pace (concurrency, think_time_s); a utilisation sweep, a plan or a "
                "stress test sets the rate of an open process (poisson or gamma)"})
        return data

    @model_validator(mode="after")
    def _think_times(self) -> ClosedArrivals:
        check_think_time(self.think_time_s)
        return self

    @property
    def rate_per_s(self) -> float:
        """A closed loop has no arrival rate (its clients' pace sets it); what asks for one (a
        utilisation sweep, a plan, a stress test: they set or scale the rate) gets this one-line
        refusal instead of a number."""
        raise InputError("workload.arrival.process", self.process, "an open arrival process "
                         "(poisson or gamma) here: this command sets or scales the arrival "
                         "rate, and a closed loop's clients set their own pace")

    @property
    def mean_think_s(self) -> float:
        """The mean think time (exact, not sampled)."""
        return mean_think_s(self.think_time_s)


AnyArrivalSpec = Annotated[PoissonArrivals | GammaArrivals | ClosedArrivals,
                           Field(discriminator="process")]
ARRIVAL_PROCESSES = tag_values(AnyArrivalSpec, "process")


# ---- traces --------------------------------------------------------------------------------

class TraceColumns(Strict):
    """Which header names hold what, for `format: csv`."""

    timestamp: str = "timestamp"
    prompt_tokens: str = "prompt_tokens"
    output_tokens: str = "output_tokens"


class TraceSpec(Strict):
    """Replay a trace: requests in the trace window [start_s, start_s + duration_s) (seconds
    after the trace's first request; default the whole trace) arrive at (t − start_s) /
    speedup; `scale` thins (< 1) or replicates (> 1) them. Requests that would arrive at or
    after the scenario's duration_s are not replayed."""

    path: str
    format: str = "auto"  # one of traces.TRACE_FORMATS
    speedup: Multiplier = 1.0  # and ≥ 1 / MAX_MULTIPLIER (_slowed_at_most): t / 1e-300 = inf
    scale: Multiplier = 1.0
    start_s: NonNeg = 0.0
    duration_s: Pos | None = None
    columns: TraceColumns | None = None
    timestamp_unit: str | None = None  # one of traces.TIMESTAMP_UNITS
    _requests: Trace | None = PrivateAttr(default=None)  # not a YAML key: see with_requests
    _file: TraceFile | None = PrivateAttr(default=None)  # how they were read: __getstate__

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return known_name(value, TRACE_FORMATS)

    @field_validator("timestamp_unit")
    @classmethod
    def _known_unit(cls, value: str | None) -> str | None:
        return None if value is None else known_name(value, TIMESTAMP_UNITS)

    @property
    def requests(self) -> Trace | None:
        """The file's requests, once load_scenario has read them."""
        if self._requests is None and self._file is not None:  # unpickled, file unreadable
            self._requests = requests_for(self._file)  # raises the InputError saying why
        return self._requests

    def with_requests(self, requests: Trace, file: TraceFile | None = None) -> TraceSpec:
        """A copy of this spec holding the requests read from its file; given how they were
        read (`file`), it pickles without them."""
        spec = self.model_copy()
        spec._requests = requests
        spec._file = file
        return spec

    def __getstate__(self) -> dict[Any, Any]:
        """Pickled without the requests when it knows how they were read: a sweep sends every
        run's scenario to a worker process, and a long trace's arrays would travel with each
        run; the worker reads them back from its own per-process cache instead (once)."""
        state = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private and private.get("_file") is not None:
            state["__pydantic_private__"] = {**private, "_requests": None}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Unpickled: the requests again, so that it compares equal to the pickled spec. A
        file that cannot be read here is reported when the requests are asked for (by the
        run), not while unpickling, where a worker process could only crash."""
        super().__setstate__(state)
        if self._requests is None and self._file is not None:
            with contextlib.suppress(InputError):
                self._requests = requests_for(self._file)

    @model_validator(mode="after")
    def _slowed_at_most(self) -> TraceSpec:
        # Not a field bound: `speedup: 0` keeps its "> 0" message.
        if self.speedup < 1 / MAX_MULTIPLIER:
            raise PydanticCustomError("order", "too slow", {
                "field": "speedup", "expected": f"a number ≥ {1 / MAX_MULTIPLIER:g}"})
        return self

    @model_validator(mode="after")
    def _csv_only(self) -> TraceSpec:
        for field in ("columns", "timestamp_unit"):
            if getattr(self, field) is not None and self.format not in ("auto", "csv"):
                raise PydanticCustomError("order", "csv only", {
                    "field": field, "expected": f"this key only with format: csv (the "
                    f"{self.format} format has fixed columns)"})
        return self


# ---- sessions ------------------------------------------------------------------------------

# Turns of one session: chat logs (LMSYS-Chat-1M, ShareGPT) average 2 to 5 and rarely pass a
# few hundred; a draw beyond this is cut to it (as a length is cut to its max_tokens).
MAX_SESSION_TURNS = 10_000
TurnCount = Annotated[int, Field(gt=0, le=MAX_SESSION_TURNS)]


class SessionsSpec(Strict):
    """Multi-turn conversations (`sim.workload.sessions`). A session's first turn sends a
    prompt of `workload.prompt_tokens` (a system prompt and the first message); each later
    turn, `think_time_s` after the previous answer (`workload.output_tokens`), sends the
    whole history (every earlier prompt message and answer) plus `new_tokens`, for `turns`
    turns. The arrival process starts sessions (poisson or gamma: `rate_per_s` sessions per
    second; closed: `concurrency` sessions at once, a client starting its next session the
    arrival's `think_time_s` after its last answer). A history longer than the model's
    context keeps its last max_context − output tokens, as chat front-ends do."""

    turns: TurnCount | LengthSpec  # a number, or a length distribution of turns (cut at 10,000)
    new_tokens: LengthSpec  # the user's message of each turn after the first
    think_time_s: ThinkTime = 0.0  # between an answer and the session's next turn

    @model_validator(mode="after")
    def _bounded(self) -> SessionsSpec:
        check_think_time(self.think_time_s)
        if not isinstance(self.turns, int) and self.turns.mean_tokens > MAX_SESSION_TURNS:
            raise PydanticCustomError("order", "too many turns", {
                "field": "turns", "expected": f"a distribution of mean ≤ {MAX_SESSION_TURNS:,} "
                "turns"})
        return self

    @property
    def mean_turns(self) -> float:
        """Turns per session on average (of the distribution as written, before the cut)."""
        return float(self.turns) if isinstance(self.turns, int) else self.turns.mean_tokens


class WorkloadSpec(Strict):
    """Synthetic (arrival, prompt_tokens, output_tokens) or replayed (trace), never both. A
    synthetic arrival is an open process (poisson, gamma: times drawn up front) or a closed
    loop of clients (closed: times decided as the run goes, `sim.engine.simulation`); with
    `sessions` it starts multi-turn conversations rather than single requests.

    `shared_prefix_tokens: N` starts every synthetic prompt with the same N tokens (a system
    prompt, `sim.workload.prefix`), counted in its prompt_tokens: prompts under N + 1 tokens
    are raised to N + 1 and counted as floored. A trace's prompts are as recorded, so with a
    trace the key is refused rather than changing them."""

    arrival: AnyArrivalSpec | None = None
    prompt_tokens: LengthSpec | None = None
    output_tokens: LengthSpec | None = None
    trace: TraceSpec | None = None
    sessions: SessionsSpec | None = None
    shared_prefix_tokens: Annotated[int, Field(ge=0, le=MAX_TOKEN_COUNT)] = 0

    @model_validator(mode="after")
    def _trace_or_synthetic(self) -> WorkloadSpec:
        if self.trace is not None and self.sessions is not None:
            raise PydanticCustomError("order", "trace replaces it", {
                "field": "sessions", "expected": "no sessions when workload.trace is given "
                "(a trace replays its own requests, one by one)"})
        if self.trace is not None and self.shared_prefix_tokens:
            raise PydanticCustomError("order", "trace replaces it", {
                "field": "shared_prefix_tokens", "expected": "0 when workload.trace is given "
                "(a trace's prompts are replayed as recorded, with the prefix ids it has)"})
        # "order" errors name a sibling key and say what it accepts.
        for field in ("arrival", "prompt_tokens", "output_tokens"):
            given = getattr(self, field) is not None
            if self.trace is not None and given:
                raise PydanticCustomError("order", "trace replaces it", {
                    "field": field, "expected": "no such key when workload.trace is given "
                    "(a trace brings its own arrivals and lengths)"})
            if self.trace is None and not given:
                raise PydanticCustomError("order", "required", {
                    "field": field, "expected": "a value (required unless workload.trace is "
                    "given)"})
        return self
