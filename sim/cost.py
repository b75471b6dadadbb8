"""Cost per delivered token.

    fleet $/hour        = GPUs × gpu_hour_usd
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
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class TokenCost:
    fleet_usd_per_hour: float
    window_usd: float
    input_usd_per_million: float | None
    output_usd_per_million: float | None
    blended_usd_per_million: float | None


def token_cost(gpus: int, gpu_hour_usd: float, window_s: float, prefill_busy_s: float,
               decode_busy_s: float, input_tokens: float, output_tokens: float) -> TokenCost:
    fleet = gpus * gpu_hour_usd
    window_usd = fleet * window_s / SECONDS_PER_HOUR
    busy = prefill_busy_s + decode_busy_s
    prefill_share = prefill_busy_s / busy if busy > 0 else 0.0
    return TokenCost(
        fleet_usd_per_hour=fleet,
        window_usd=window_usd,
        input_usd_per_million=_per_million(window_usd * prefill_share, input_tokens),
        output_usd_per_million=_per_million(window_usd * (1.0 - prefill_share), output_tokens),
        blended_usd_per_million=_per_million(window_usd, input_tokens + output_tokens),
    )


def _per_million(usd: float, tokens: float) -> float | None:
    return usd / tokens * 1e6 if tokens > 0 else None
