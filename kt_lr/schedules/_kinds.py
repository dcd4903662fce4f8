"""The built-in schedule kinds, one small builder each (see ``_registry.py``).

Importing this module registers them, in the order of ``kt_lr.schedules.KINDS``.
"""

from __future__ import annotations

from kt_lr.schedules._classes import Cyclical, OneCycle
from kt_lr.schedules._keras import cosine, exponential, sgdr, step_decay
from kt_lr.schedules._momentum import OneCycleMomentum
from kt_lr.schedules._registry import Plan, register
from kt_lr.schedules._result import ScheduledLR
from kt_lr.validation import check_count

# --------------------------------------------------------------------------- shared rules


def _warmup_steps(total: int) -> int:
    """Linear warm-up over 5% of the run (at least one step once there is room)."""
    return max(1, round(0.05 * total)) if total >= 3 else 0


def _half_cycle(total: int, epochs: int, cycles: int | None = None) -> tuple[int, float]:
    """Cycles of about 4 epochs (half-cycle 2 epochs, Smith's lower end), ending the run."""
    n = max(1, epochs // 4) if cycles is None else check_count("cycles", cycles)
    return n, total / (2 * n)


def _step_boundaries(total: int, milestones: tuple[float, ...]) -> list[int]:
    out: list[int] = []
    for m in milestones:
        b = round(float(m) * total)
        if 0 < b < total and (not out or b > out[-1]):
            out.append(b)
    return out


# --------------------------------------------------------------------------- the kinds


@register("constant", min_steps=1)
def _constant(plan: Plan) -> ScheduledLR:
    """The pick."""
    return plan.result(
        plan.lr,
        [
            f"constant rate {plan.lr:.3g}: the finding's pick (its interval is "
            f"[{plan.low:.3g}, {plan.high:.3g}])"
        ],
    )


@register(
    "one_cycle",
    options=(
        "max_lr",
        "pct_start",
        "div_factor",
        "final_div",
        "anneal",
        "max_momentum",
        "base_momentum",
        "cycle_momentum",
    ),
    at_peak=lambda v: {"max_lr": v, "final_div": 1e4, "cycle_momentum": False},
)
def _one_cycle(plan: Plan) -> ScheduledLR:
    """Peak ``cap`` after a warm-up from peak/25, down to the floor; momentum cycled."""
    max_lr = plan.rate("max_lr", plan.cap)
    schedule = OneCycle(
        max_lr,
        plan.total,
        pct_start=plan.option("pct_start", 0.3),
        div_factor=plan.option("div_factor", 25.0),
        final_div=plan.option("final_div", max(1.0, max_lr / plan.floor)),
        anneal=plan.option("anneal", "cos"),
        max_momentum=plan.option("max_momentum", 0.95),
        base_momentum=plan.option("base_momentum", 0.85),
    )
    if plan.given("max_lr"):
        reasons = [f"one-cycle max_lr {max_lr:.3g}: set by you (pick {plan.lr:.3g})"]
    else:
        reasons = [
            f"one-cycle max_lr {max_lr:.3g}: geometric mean of the pick {plan.lr:.3g} and "
            f"{plan.top_words}: the peak is brief and follows a warm-up, so it can sit above "
            "the constant pick, and it stays below the edge"
        ]
    reasons.append(
        f"warm-up from {schedule.initial_lr:.3g} (max_lr/{schedule.div_factor:g}) to the "
        f"peak at {schedule.pct_start:.0%} of {plan.run}, then {schedule.anneal} anneal to "
        f"{schedule.final_lr:.3g} (max_lr/{schedule.final_div:.3g}"
        + ("" if plan.given("final_div") else ", the floor low/100")
        + ") at the last step"
    )
    callbacks = []
    if plan.option("cycle_momentum", True):
        callbacks.append(OneCycleMomentum(schedule, strict=False))
        reasons.append(
            f"momentum cycles {schedule.max_momentum:g} -> {schedule.base_momentum:g} -> "
            f"{schedule.max_momentum:g} inversely to the rate (callbacks; an optimizer "
            "without momentum, e.g. SGD(momentum=0) or Adagrad, keeps its own with a "
            "warning; pass cycle_momentum=False to keep the optimizer's own)"
        )
    return plan.result(schedule, reasons, callbacks)


@register(
    "cyclical",
    options=("base_lr", "max_lr", "cycles", "mode", "gamma"),
    at_peak=lambda v: {"max_lr": v, "base_lr": v / 4},
)
def _cyclical(plan: Plan) -> ScheduledLR:
    """Triangular cycles of about 4 epochs between ``max(top/4, low)`` and ``top``."""
    max_lr = plan.rate("max_lr", plan.top)
    base_lr = plan.option("base_lr", None)
    if base_lr is None:
        low = plan.low
        base_lr = max(max_lr / 4, low) if max(max_lr / 4, low) < max_lr else max_lr / 4
        base_words = (
            "max_lr/4 (Smith: 3-4x below the top)"
            if base_lr == max_lr / 4
            else f"the interval's bottom {low:.3g} (above max_lr/4)"
        )
    else:
        base_words = "set by you"
    n, half = _half_cycle(plan.total, plan.epochs, plan.option("cycles", None))
    schedule = Cyclical(
        base_lr,
        max_lr,
        half,
        mode=plan.option("mode", "triangular"),
        gamma=plan.option("gamma", 1.0),
    )
    top_why = "set by you" if plan.given("max_lr") else plan.top_words
    reasons = [
        f"cyclical between {schedule.base_lr:.3g} and {schedule.max_lr:.3g}: the top is "
        f"{top_why} (Smith 2017 cycles up to where the loss stops falling); the base is "
        f"{base_words}; the pick {plan.lr:.3g} lies between",
        f"{schedule.mode}, {n} cycle(s) over {plan.run}: half-cycle {half:.4g} steps "
        f"({half / plan.steps_per_epoch:.3g} epochs), ending at the base rate",
    ]
    return plan.result(schedule, reasons)


@register(
    "cosine",
    options=("peak_lr", "warmup_steps", "floor_lr"),
    at_peak=lambda v: {"peak_lr": v, "floor_lr": 0.0},
)
def _cosine(plan: Plan) -> ScheduledLR:
    """5% linear warm-up from the floor to the peak, cosine down to the floor."""
    peak = plan.peak()
    bottom = plan.rate("floor_lr", plan.floor, allow_zero=True)
    warm = plan.steps("warmup_steps", _warmup_steps(plan.total), minimum=0)
    decay = max(1, plan.total - warm - 1)
    schedule = cosine(peak, decay, warmup_steps=warm, alpha=bottom / peak)
    reasons = [
        plan.peak_reason("cosine", peak),
        f"linear warm-up from {bottom:.3g} over {warm} steps, then cosine decay over "
        f"{decay} steps to {bottom:.3g} (floor low/100) at the last of {plan.run}",
    ]
    return plan.result(schedule, reasons)


@register(
    "sgdr",
    options=("peak_lr", "first_decay_steps", "t_mul", "m_mul", "floor_lr"),
    at_peak=lambda v: {"peak_lr": v, "floor_lr": 0.0},
)
def _sgdr(plan: Plan) -> ScheduledLR:
    """Cosine to the floor, restarting every ``max(1, epochs // 4)`` epochs (t_mul=1)."""
    peak = plan.peak()
    bottom = plan.rate("floor_lr", plan.floor, allow_zero=True)
    period = plan.steps("first_decay_steps", plan.steps_per_epoch * max(1, plan.epochs // 4))
    t_mul = float(plan.option("t_mul", 1.0))
    m_mul = float(plan.option("m_mul", 1.0))
    schedule = sgdr(peak, period, t_mul=t_mul, m_mul=m_mul, alpha=bottom / peak)
    reasons = [
        plan.peak_reason("SGDR", peak),
        f"cosine down to {bottom:.3g} (floor low/100) and restart every {period} steps "
        f"({period / plan.steps_per_epoch:.3g} epochs, t_mul={t_mul:g}, m_mul={m_mul:g}) "
        f"over {plan.run}; restarts jump straight back to the peak, which stays below the edge",
    ]
    return plan.result(schedule, reasons)


@register(
    "exponential",
    options=("peak_lr", "final_lr"),
    # hp_schedule's rule: down to peak/20 at the last step, with the ratio kept exact
    at_peak=lambda v: {"peak_lr": v, "final_lr": v / 20, "decay_rate": 0.05},
)
def _exponential(plan: Plan) -> ScheduledLR:
    """Exponential decay from the peak to the interval's bottom at the last step."""
    peak = plan.peak()
    end = plan.rate("final_lr", min(plan.low, peak))
    rate = plan.option("decay_rate", end / peak)
    schedule = exponential(peak, plan.total - 1, rate)
    per_epoch = rate ** (plan.steps_per_epoch / (plan.total - 1))
    reasons = [
        plan.peak_reason("exponential", peak),
        f"decays x{per_epoch:.3g} per epoch to {end:.3g} "
        + ("(set by you)" if plan.given("final_lr") else "(the interval's bottom)")
        + f" at the last of {plan.run}",
    ]
    return plan.result(schedule, reasons)


@register(
    "step",
    options=("peak_lr", "milestones", "factor"),
    at_peak=lambda v: {"peak_lr": v},
)
def _step(plan: Plan) -> ScheduledLR:
    """The peak, divided by 10 at 50% and at 75% of the run."""
    peak = plan.peak()
    factor = plan.rate("factor", 0.1)
    milestones = tuple(plan.option("milestones", (0.5, 0.75)))
    bounds = _step_boundaries(plan.total, milestones)
    values = [peak * factor**i for i in range(len(bounds) + 1)]
    reasons = [
        plan.peak_reason("step", peak),
        f"x{factor:g} at steps {bounds} ({', '.join(f'{m:.0%}' for m in milestones)} of "
        f"{plan.run}): {' -> '.join(f'{v:.3g}' for v in values)}",
    ]
    return plan.result(step_decay(bounds, values), reasons)
