"""Cost per delivered token, for rented or owned GPUs.

A GPU-hour costs either a rental price (`gpu_hour_usd`, or the chosen one of named `prices`)
or, for owned hardware (`tco`), with bought = capex_per_gpu_usd + server_network_share_usd,
the sum of

    capex           bought / (amortization_years × 8760)
    maintenance     bought × maintenance_fraction_per_year / 8760
    hosting         hosting_usd_per_gpu_year / 8760
    power           (b × power_busy_w + (1 − b) × power_idle_w) × pue / 1000 × usd_per_kwh

where b is the busy fraction (the share of the window the GPU's replica spent running steps)
and 8760 = hours in a year. Only power depends on the traffic; a rental price already
includes it. Then, for either:

    fleet $/hour        = GPUs × gpu_hour_usd   (GPUs paid for: when the fleet changes
                          during the run, the provisioned replica-time × tp over the window)
    window cost         = fleet $/hour × window seconds / 3600
    $/1M input tokens   = window cost × prefill share / input tokens delivered  × 1e6
    $/1M output tokens  = window cost × decode share  / output tokens delivered × 1e6
    $/1M blended        = window cost / (input + output tokens delivered)       × 1e6

The prefill and decode shares are the fractions of busy GPU time the step-time model charged
to each phase. Idle time is not a separate line: it is paid for by the tokens that were
delivered, which is why cost per token falls as utilisation rises.

Worked example: 2 GPUs at $2.50/h for a 600 s window cost 2 × 2.5 × 600 / 3600 = $0.8333.
If 25% of busy time was prefill and the window delivered 2.0M input and 0.5M output tokens,
input costs 0.8333 × 0.25 / 2.0 = $0.1042/1M, output 0.8333 × 0.75 / 0.5 = $1.25/1M and
blended 0.8333 / 2.5 = $0.3333/1M.

Goodput cost divides the same window cost by the tokens of only those requests that met
the SLO (both TTFT and TPOT targets), so a fleet that is cheap because it is overloaded is
seen to be expensive. Energy per token (owned hardware only, where the watts are known) is
the facility energy of the window, fleet watts × pue × window seconds, over the tokens
delivered in it, in joules.

Worked TCO example (also a test): a GPU bought for $30,000 plus a $13,800 share of server
and network is $43,800; over 5 years that is 43,800 / 43,800 = $1.00/h, maintenance at 4%
a year adds 43,800 × 0.04 / 8760 = $0.20/h and hosting at $876 a year $0.10/h. Busy 75% of
the time at 700 W (idle 100 W) it draws 0.75 × 700 + 0.25 × 100 = 550 W, × pue 1.2 = 660 W,
which at $0.10/kWh is $0.066/h: $1.366 per GPU-hour. Four such GPUs cost $5.464/h; if they
deliver 10,000 tokens/s, that is 5.464 / (10,000 × 3600) × 1e6 = $0.1518 per 1M tokens, and
4 × 660 W / 10,000 tokens/s = 0.264 J per token.
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


def gpu_hour(cost: Cost, busy_fraction: float) -> GpuHour:
    """The price of one GPU-hour: the rental price, or owned hardware's TCO at this load."""
    rental = cost.rental_gpu_hour_usd
    if rental is not None:
        return GpuHour(rental, {"rental": rental}, None)
    assert cost.tco is not None  # Cost's validator: exactly one of rental prices or tco
    return _tco_hour(cost.tco, busy_fraction)


def _tco_hour(tco: Tco, busy_fraction: float) -> GpuHour:
    capex_usd = tco.capex_per_gpu_usd + tco.server_network_share_usd
    facility_w = (busy_fraction * tco.power_busy_w
                  + (1.0 - busy_fraction) * tco.power_idle_w) * tco.pue
    items = {
        "capex": capex_usd / (tco.amortization_years * HOURS_PER_YEAR),
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
    input_usd_per_million: float | None
    output_usd_per_million: float | None
    blended_usd_per_million: float | None


def token_cost(gpus: float, gpu_hour_usd: float, window_s: float, prefill_busy_s: float,
               decode_busy_s: float, input_tokens: float, output_tokens: float) -> TokenCost:
    fleet = gpus * gpu_hour_usd
    window_usd = fleet * window_s / SECONDS_PER_HOUR
    busy = prefill_busy_s + decode_busy_s
    prefill_share = prefill_busy_s / busy if busy > 0 else 0.0
    return TokenCost(
        fleet_usd_per_hour=fleet,
        window_usd=window_usd,
        input_usd_per_million=per_million(window_usd * prefill_share, input_tokens),
        output_usd_per_million=per_million(window_usd * (1.0 - prefill_share), output_tokens),
        blended_usd_per_million=per_million(window_usd, input_tokens + output_tokens),
    )


def per_million(usd: float, tokens: float) -> float | None:
    """Dollars per million tokens; None when nothing was delivered (no finite price)."""
    return usd / tokens * 1e6 if tokens > 0 else None
