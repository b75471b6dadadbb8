"""Cost per delivered token, for rented or owned GPUs.

A GPU-hour costs either a rental price (`gpu_hour_usd`, or the chosen one of named `prices`)
or, for owned hardware (`tco`), with bought = capex_per_gpu_usd + server_network_share_usd,
the sum of

    capex           bought × annuity(cost_of_capital, amortization_years) / 8760
    maintenance     bought × maintenance_fraction_per_year / 8760
    hosting         hosting_usd_per_gpu_year / 8760
    power           (gpu_w + host_w) × pue / 1000 × usd_per_kwh
                    gpu_w  = power_idle_w + a × (power_busy_w − power_idle_w)
                    host_w = host_power_idle_w + a × (host_power_busy_w − host_power_idle_w)

where annuity(r, n) = r / (1 − (1 + r)^−n) is the yearly payment that repays 1 over n years
at rate r (1/n, straight-line, at r = 0), 8760 = hours in a year, and a is how hard the GPU
works: with `power_scaling: busy-time` (the default) the busy fraction, the share of the
window its replica spent running steps; with `load`, the share of its full-load capacity the
delivered tokens used (`used_fraction` below, at most 1). Under continuous batching a GPU
runs steps at any load, so busy-time charges busy watts for a half-empty batch; `load`
assumes instead that the draw rises linearly with the work done, from idle watts with none
to busy watts at saturation (busy watts being what a saturated GPU draws).
Only power depends on the traffic; a rental price already
includes it. Then, for either:

    fleet $/hour        = GPUs × gpu_hour_usd   (GPUs paid for: when the fleet changes
                          during the run, the provisioned replica-time × tp over the window)
    window cost         = fleet $/hour × window seconds / 3600
    $/1M input tokens   = window cost × (prefill share − cached share) / input tokens  × 1e6
    $/1M cached input   = window cost × cached share / cached tokens                   × 1e6
    $/1M output tokens  = window cost × decode share  / output tokens delivered        × 1e6
    $/1M blended        = window cost / (input + cached + output tokens delivered)     × 1e6

Tokens delivered are those the engine processed inside the window: prompt tokens prefilled
for the first time and tokens generated, each counted at the end of its step
(`sim.metrics.record`), not the lengths of the requests that happened to finish in it.
The prefill and decode shares are the fractions of busy GPU time the step-time model charged
to each phase (the phase-time split). Idle time is not a separate line: it is paid for by the
tokens that were delivered, which is why cost per token falls as utilisation rises. But
under continuous batching the decode steps run whenever anything is in flight, so idle
capacity lands on output tokens and the split mostly reflects load.

With a prefix cache, cached tokens are prompt tokens a request found in the cache and did
not prefill; input tokens are then the fresh ones only. Reuse is not free: the prefill time
holds the attention of the fresh tokens over the cached prefix, which reads its KV. The
cached share is that time, summed over the requests whose prefill ended in the window
(`sim.metrics.record`), over busy time (capped at the prefill share); it is carved out of
the prefill share, so the three kinds still add up to the window cost. Blended counts
cached tokens as delivered tokens (an API's blended price counts them as input too):
blended is the window cost over every token delivered. Without a prefix cache the cached
share and cached tokens are 0, the cached price is None and the rest is unchanged.

The capacity-based split charges each token what it takes at full load instead. With g_p and
g_d the GPU-seconds a prefill token and a decode token take on a saturated replica
(`sim.metrics.capacity`), n requests finished in the window (their first output token comes
with the prefill, so O − n output tokens needed a decode step) and gpu_usd_per_s = gpu_hour_usd
/ 3600:

    work at full load     W = g_p × I + g_d × (O − n) + W_c    GPU-seconds
    used_fraction         W / paid GPU-seconds
    at capacity  input    gpu_usd_per_s × g_p × 1e6                        $/1M
                 cached   gpu_usd_per_s × W_c / C × 1e6
                 output   gpu_usd_per_s × g_d × (O − n) / O × 1e6
                 blended  gpu_usd_per_s × W / (I + C + O) × 1e6
    capacity split        each at-capacity price / used_fraction

where C are the cached tokens and W_c the GPU-seconds their reuse cost as measured (the
cached prefill seconds above × GPUs per replica; 0 without a prefix cache). That is
attention over KV already held, which does not amortise over a batch the way weight reads
do, so the measured seconds per cached token are taken as its full-load cost too.

The at-capacity prices are what the tokens cost on a fleet kept full (what an API price,
quoted for a provider's whole busy fleet, compares with); the capacity split charges this
window's whole cost, idle included, pro rata to that work, so input and output keep the
ratio g_p : g_d at any load and still add up to the window cost.

Worked capacity example (also a test): 1,800 paid GPU-seconds at $2/h cost $1.00. A
prefill token takes 50 µs and a decode token 1 ms of GPU time at full load. The window
delivered 2M input and 501,000 output tokens in 1,000 requests: W = 2e6 × 5e-5 + 500,000 ×
1e-3 = 600 GPU-s, a third of what was paid for. At capacity input costs 2 / 3600 × 5e-5 ×
1e6 = $0.02778/1M, output 2 / 3600 × 1e-3 × 500,000 / 501,000 × 1e6 = $0.5544/1M, blended
2 / 3600 × 600 / 2.501e6 × 1e6 = $0.1333/1M. The capacity split is three times each:
input $0.08333 and output $1.663/1M (2M × 0.08333 + 0.501M × 1.663 = $1.00, the window
cost), and three times the blended is $0.3998/1M = $1.00 / 2.501M, the run's blended price.

Worked example: 2 GPUs at $2.50/h for a 600 s window cost 2 × 2.5 × 600 / 3600 = $0.8333.
If 25% of busy time was prefill and the window delivered 2.0M input and 0.5M output tokens,
input costs 0.8333 × 0.25 / 2.0 = $0.1042/1M, output 0.8333 × 0.75 / 0.5 = $1.25/1M and
blended 0.8333 / 2.5 = $0.3333/1M.

Worked prefix-cache example (also a test): the same window, but 5% of busy time was the
prefill its requests' cached prefixes still cost, and besides the 2.0M fresh input tokens
1.0M were found cached. Cached input costs 0.8333 × 0.05 / 1.0 = $0.04167/1M, fresh input
0.8333 × (0.25 − 0.05) / 2.0 = $0.08333/1M, output still $1.25/1M, and blended 0.8333 / 3.5
= $0.2381/1M (2.0 × 0.08333 + 1.0 × 0.04167 + 0.5 × 1.25 = $0.8333, the window cost). In
the capacity example, 1.5M cached tokens whose reuse took 30 GPU-seconds make W = 630 GPU-s,
a used fraction of 0.35: cached input costs 2 / 3600 × 30 / 1.5e6 × 1e6 = $0.01111/1M at
capacity and $0.03175/1M split, input $0.07937 and output $1.584/1M split (2 × 0.07937 +
1.5 × 0.03175 + 0.501 × 1.584 = $1.00), blended 2 / 3600 × 630 / 4.001e6 × 1e6 =
$0.08748/1M at capacity.

Goodput cost divides the same window cost by the tokens delivered × the share of the
finished requests' tokens whose requests met the SLO (both TTFT and TPOT targets), so a
fleet that is cheap because it is overloaded is seen to be expensive. Energy per token
(owned hardware only, where the watts are known) is the facility energy of the window, fleet
watts × pue × window seconds, over the tokens delivered in it, in joules.

Worked TCO example (also a test): a GPU bought for $30,000 plus a $13,800 share of server
and network is $43,800; over 5 years that is 43,800 / 43,800 = $1.00/h, maintenance at 4%
a year adds 43,800 × 0.04 / 8760 = $0.20/h and hosting at $876 a year $0.10/h. Busy 75% of
the time at 700 W (idle 100 W) it draws 0.75 × 700 + 0.25 × 100 = 550 W, × pue 1.2 = 660 W,
which at $0.10/kWh is $0.066/h: $1.366 per GPU-hour. Four such GPUs cost $5.464/h; if they
deliver 10,000 tokens/s, that is 5.464 / (10,000 × 3600) × 1e6 = $0.1518 per 1M tokens, and
4 × 660 W / 10,000 tokens/s = 0.264 J per token.

Worked examples of the host and the cost of capital (also tests): a DGX H100 draws about
10.2 kW with its 8 GPUs at their 700 W, so each GPU brings 10,200 / 8 − 700 = 575 W of host
with it; busy, one GPU-slot draws 1,275 W, × pue 1.2 = 1,530 W, $0.153/h at $0.10/kWh. At an
8% cost of capital over 4 years the annuity is 0.08 / (1 − 1.08^−4) = 0.30192 of the price
a year against 0.25 straight-line: capex per hour is 20.8% higher ($43,800 → $1.5096/h
instead of $1.2500/h).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.scenario.schema import Cost, Tco

SECONDS_PER_HOUR = 3600.0
HOURS_PER_YEAR = 8760.0  # 365 days: yearly figures and amortisation are spread over these
# What a GPU-hour can be made of, in the order results list them: `rental` for rented GPUs,
# the other four for owned ones (`GpuHour.usd_by_item` holds the ones that apply).
COST_ITEMS = ("rental", "capex", "maintenance", "hosting", "power")


@dataclass(frozen=True)
class GpuHour:
    """What one GPU-hour costs on average over the window, and what it is made of."""

    usd: float
    usd_by_item: dict[str, float]  # rental | capex, maintenance, hosting, power
    facility_w: float | None  # average draw × pue; None when renting (watts unknown)


def gpu_hour(cost: Cost, busy_fraction: float, used_fraction: float) -> GpuHour:
    """The price of one GPU-hour: the rental price, or owned hardware's TCO at this load
    (`busy_fraction` or `used_fraction` drives its power, as its `power_scaling` says)."""
    rental = cost.rental_gpu_hour_usd
    if rental is not None:
        return GpuHour(rental, {"rental": rental}, None)
    assert cost.tco is not None  # Cost's validator: exactly one of rental prices or tco
    tco = cost.tco
    activity = busy_fraction if tco.power_scaling == "busy-time" else min(used_fraction, 1.0)
    return _tco_hour(tco, activity)


def annuity(rate: float, years: float) -> float:
    """The share of a price paid each year to repay it over `years` at `rate` a year."""
    if rate == 0:
        return 1.0 / years
    return rate / (1.0 - (1.0 + rate) ** -years)


def _tco_hour(tco: Tco, activity: float) -> GpuHour:
    capex_usd = tco.capex_per_gpu_usd + tco.server_network_share_usd
    gpu_w = tco.power_idle_w + activity * (tco.power_busy_w - tco.power_idle_w)
    host_w = tco.host_power_idle_w + activity * (tco.host_power_busy_w
                                                 - tco.host_power_idle_w)
    facility_w = (gpu_w + host_w) * tco.pue
    items = {
        "capex": capex_usd * annuity(tco.cost_of_capital, tco.amortization_years)
        / HOURS_PER_YEAR,
        "maintenance": capex_usd * tco.maintenance_fraction_per_year / HOURS_PER_YEAR,
        "hosting": tco.hosting_usd_per_gpu_year / HOURS_PER_YEAR,
        "power": facility_w / 1000.0 * tco.usd_per_kwh,
    }
    return GpuHour(sum(items.values()), items, facility_w)


def energy_j_per_token(facility_w: float | None, gpus: float,
                       tokens_per_s: float) -> float | None:
    """Joules of facility energy per delivered token (None when the watts are unknown)."""
    if facility_w is None or tokens_per_s <= 0:
        return None
    return facility_w * gpus / tokens_per_s


@dataclass(frozen=True)
class TokenCost:
    fleet_usd_per_hour: float
    window_usd: float
    input_usd_per_million: float | None  # fresh prompt tokens
    output_usd_per_million: float | None
    blended_usd_per_million: float | None  # over all tokens delivered, cached ones included
    cached_input_usd_per_million: float | None = None  # None: no cached token in the window


def token_cost(gpus: float, gpu_hour_usd: float, window_s: float, prefill_busy_s: float,
               decode_busy_s: float, input_tokens: float, output_tokens: float,
               cached_prefill_s: float = 0.0, cached_tokens: float = 0.0) -> TokenCost:
    """The phase-time split; `cached_prefill_s` (part of `prefill_busy_s`) is what the
    `cached_tokens` a prefix cache served still cost to prefill against."""
    fleet = gpus * gpu_hour_usd
    window_usd = fleet * window_s / SECONDS_PER_HOUR
    busy = prefill_busy_s + decode_busy_s
    prefill_share = prefill_busy_s / busy if busy > 0 else 0.0
    # No cached token: nothing to charge (else its share would be lost with a None price).
    cached_share = min(cached_prefill_s, prefill_busy_s) / busy \
        if busy > 0 and cached_tokens > 0 else 0.0
    return TokenCost(
        fleet_usd_per_hour=fleet,
        window_usd=window_usd,
        input_usd_per_million=per_million(window_usd * (prefill_share - cached_share),
                                          input_tokens),
        output_usd_per_million=per_million(window_usd * (1.0 - prefill_share), output_tokens),
        blended_usd_per_million=per_million(window_usd,
                                            input_tokens + cached_tokens + output_tokens),
        cached_input_usd_per_million=per_million(window_usd * cached_share, cached_tokens),
    )


def per_million(usd: float, tokens: float) -> float | None:
    """Dollars per million tokens; None when nothing was delivered (no finite price)."""
    return usd / tokens * 1e6 if tokens > 0 else None


@dataclass(frozen=True)
class CapacityPrice:
    """The capacity-based prices of the module docstring ($/1M; None: nothing to price)."""

    used_fraction: float  # full-load GPU-seconds of the delivered tokens / paid GPU-seconds
    at_capacity_input: float | None
    at_capacity_output: float | None
    at_capacity_blended: float | None
    split_input: float | None
    split_output: float | None
    at_capacity_cached_input: float | None = None  # None: no cached token in the window
    split_cached_input: float | None = None


def full_load_gpu_s(prefill_gpu_s_per_token: float, decode_gpu_s_per_token: float,
                    input_tokens: float, output_tokens: float, requests: float,
                    cached_gpu_s: float = 0.0) -> float:
    """W: the GPU-seconds the tokens of `requests` finished requests take at full load
    (`cached_gpu_s`: W_c, what reusing their cached prefixes took)."""
    decoded = max(output_tokens - requests, 0.0)
    return prefill_gpu_s_per_token * input_tokens + decode_gpu_s_per_token * decoded \
        + cached_gpu_s


def capacity_price(gpu_hour_usd: float, paid_gpu_s: float, prefill_gpu_s_per_token: float,
                   decode_gpu_s_per_token: float, input_tokens: float, output_tokens: float,
                   requests: float, cached_gpu_s: float = 0.0,
                   cached_tokens: float = 0.0) -> CapacityPrice:
    """Prices from full-load GPU-seconds per token (`sim.metrics.capacity`, × GPUs per
    replica) for the tokens of `requests` finished requests, and from the measured
    `cached_gpu_s` of their `cached_tokens`."""
    usd_per_gpu_s = gpu_hour_usd / SECONDS_PER_HOUR
    work_gpu_s = full_load_gpu_s(prefill_gpu_s_per_token, decode_gpu_s_per_token,
                                 input_tokens, output_tokens, requests, cached_gpu_s)
    decode_gpu_s = work_gpu_s - prefill_gpu_s_per_token * input_tokens - cached_gpu_s
    used = work_gpu_s / paid_gpu_s if paid_gpu_s > 0 else 0.0
    at_input = usd_per_gpu_s * prefill_gpu_s_per_token * 1e6 if input_tokens > 0 else None
    at_output = per_million(usd_per_gpu_s * decode_gpu_s, output_tokens)
    at_blended = per_million(usd_per_gpu_s * work_gpu_s,
                             input_tokens + cached_tokens + output_tokens)
    at_cached = per_million(usd_per_gpu_s * cached_gpu_s, cached_tokens)

    def split(price: float | None) -> float | None:
        return price / used if price is not None and used > 0 else None

    return CapacityPrice(used, at_input, at_output, at_blended, split(at_input),
                         split(at_output), at_cached, split(at_cached))
