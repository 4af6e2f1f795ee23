"""Attacks driven to an exact perceptibility: per volume, the strongest budget whose image keeps a target 3-D SSIM.

For an attack with a monotone strength knob (:data:`KNOBS`: ε of the voxel attacks and APGD, ρ of SA², q_max of
VAFA, σ of Gaussian noise), :func:`at_ssim` finds per volume the largest budget ``b`` with
``SSIM3D(clean, attack_b(clean)) ≥ target`` and ``SSIM − target ≤ tolerance``. The SSIM is the one the audit reports
(:func:`~SpectrumAttackLib.metrics.volume_ssim.volume_ssim`, skimage's 7×7×7 definition).

Search (per volume, one shared set of runs for several targets, :func:`search_levels`):

1. model: ``log((1 − SSIM)/SSIM)`` against ``log budget`` — near the levels the log SSIM deficit, and a line still
   where the SSIM saturates (Gaussian noise's ``(1 − SSIM)/SSIM ≈ σ²/k``), so one run far from the levels (a grid's
   middle budget often is) still points close to them;
2. after every run, each level that the runs settle is settled (a run in its band, or a run a little below it
   projected onto it, below); the first aimed run goes to the middle level (of three or more), so that its run
   brackets or flanks the others; after that, the next run is aimed at the middle of the window of SSIMs that
   settle the unsettled level nearest (in the model) to a run made so far (the band ``[target, target +
   tolerance]``, widened below by what a projection reaches, counted at 3/4 of its model value), so each
   run serves the level it can serve best and runs are shared between levels; after two runs for a level fell on
   one side of it, with every run on that side, the next run goes to the farthest pending level on the other side
   (its run brackets the stalled level); when the runs left are only enough for the levels not aimed at yet, they
   go to those, aimed a tolerance above the band in the model and by the weaker of the two extrapolations below (a
   level is never left with the clean image for want of a run, nor, mostly, for a last run that fell below it);
3. the aim: a quadratic in the model through the three runs nearest the goal — inside a bracket (a run at or above
   the target and one below) where it stays inside it, outside a bracket also beyond the runs (the slope changes
   with the budget: PGD's 1.05 at ε 8 to 1.85 at ε 1 on the sample CT), wherever its slope there lies in 0.5–4;
   else inside a bracket the line through its ends, kept 2 % of the bracket from its ends, and a geometric
   bisection after two runs for one level fell on one side, the last of them more than a tolerance from the band
   (a near miss aims again: SA²'s 0.95 run at ρ 0.338 landed 0.0004 below it); outside a bracket the chord from
   the nearest run to the farthest run near the goal (the knob's slope from one run, or when the runs are far from
   the goal: ρ 1, else 1.5), and a factor 1.5 at least after two runs on one side (SA²'s SSIM stays within 0.0003
   of 0.9497 for ρ 0.31–0.35 on the sample CT: its own SSIM term holds it there);
4. stop when every level is settled or after ``max_runs`` attack runs per volume. On the sample CT, measured
   (``bench/audit_cost.py --slices 80: --ssim_levels 0.99 0.97 0.95``, quick preset, 2 threads): SA² 6 runs from
   ρ 0.4 (attack runs only, ``min_weight=1``: 8, 0.99 left at ``max-runs``), PGD 5 from ε 8 (6), GN 5 (6).
   Simulated on runs measured there before: SA² 3 from ρ 0.4 and 0.2, 7 from 0.1; PGD 5 from ε 8, 4 from 4. On 400
   seeded curves whose model is a quadratic in log budget, started a factor up to 12 from the 0.97 budget (as the
   tests' 200): 4.54 runs on average, none over 6, 3 of 1200 levels not settled (runs only: 5.31, 5.5 %, 4); with
   bumps of ±0.06 in the model, an optimiser's as SA²'s: 4.76, 2.5 %, 3 (runs only: 5.87, 27 %, 12); projections
   kept 0.95 of their run's perturbation on average.

Every run is a fresh, seeded attack at its budget: no warm start from another budget's result, so a budget's
result and SSIM do not depend on the search path and the search's curve is well defined; what is shared is the
set of runs between targets (three levels usually cost 4–6 runs, not three searches).

Projection (Laidlaw, Singla, Feizi, ICLR 2021, ``BisectionPerceptualProjection``, there onto an LPIPS ball): where
the weakest run below a level (stronger than every admissible run) lands only a little below it, the level is
settled by ``clean + λ·(run − clean)``, the weight λ ∈ ``[min_weight, 1)`` found by a secant on the SSIM (a few
SSIMs, no attack run) so that the SSIM lies in the band. Its image keeps at least ``min_weight`` (default 0.9) of
an optimised perturbation: for ε, ρ and σ it lies within the budget λ·b (ρ: the factors ``1 + λ(ξ − 1)`` before
the clamp to [0, 1]), but it was optimised at ``b``, not at λ·b. Measured on the sample CT against fresh runs at
λ·b (``bench/projection_strength.py``; λ 0.95 and 0.9; PGD ε 1.2–3, SA² ρ 0.05–0.2): PGD's projection has the
fresh run's SSIM to 0.0002 and a Dice higher by at most 0.0012 (slightly weaker); SA²'s has a *higher* SSIM than
the fresh run (0.9682 vs 0.9663 at ρ 0.2, λ 0.95) for a Dice within 0.0017, so at equal SSIM it is as strong.
The level records λ and ``projected``; ``min_weight=1`` keeps to attack runs. SA²'s bumps (its SSIM against ρ
moves by the tolerance between neighbouring budgets) cost the runs that a band of width 0.002 needed; along λ the
SSIM is smooth, so a run that lands up to about 10 % of its perturbation too strong settles its level.

Nothing is clipped: each level reports its status:

``reached``        a run within ``[target, target + tolerance]``;
``projected``      a run below the target, scaled by λ ≥ ``min_weight`` towards the clean image into the band;
``unreachable``    the SSIM stays above the target up to the knob's largest value (``max_budget``);
``below-at-weakest`` the weakest budget the knob allows already falls below the target (VAFA at ``q_min``);
``non-monotone``   two runs contradict a monotone knob by more than the tolerance on this volume;
``max-runs``       the runs were spent; the best admissible run (possibly the clean image) is returned.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from SpectrumAttackLib.attacks.parameters import parameters_of
from SpectrumAttackLib.checks import check_int, check_range

__all__ = ["KNOBS", "SSIMLevel", "SSIMTargetResult", "at_ssim", "budget_knob", "search_levels", "ssim_to"]

#: strength knobs in order of preference: name → (weakest value, strongest value, whether 0 is the clean image).
KNOBS: dict[str, tuple[float, float, bool]] = {
    "rho": (0.0, 0.999, True),
    "q_max": (5.0, 255.0, False),
    "eps": (0.0, 255.0, True),
    "std": (0.0, 255.0, True),
}
_SAFEGUARD = 0.02  # an interpolated budget stays this fraction of the (log) bracket away from its ends
_POWER_RANGE = (0.5, 4.0)
_MIN_STEP = 1.05  # an extrapolated budget differs at least this factor from the bracket's run
_STALLED_STEP = 1.5  # ... and at least this one after two runs for a level fell on one side
_FLOOR = 1e-6  # SSIMs are clamped into [_FLOOR, 1 − _FLOOR] for the model
_NEAR = 2.0  # runs whose log SSIM deficit is this close to the goal's shape its extrapolation
_PROJECTION_TRIES = 8  # SSIM evaluations of one projection at most
#: a projection's weight λ lowers the model value by about 2·log λ (the SSIM deficit ∝ λ² near the clean image);
#: the aim counts on this share of it
_PROJECTION_REACH = 0.75
#: per knob, the slope from one run: SA²'s ρ 1 (0.75–1.4 measured on the sample CT); else 1.5, between PGD's ε
#: (1.05–1.85 on the sample CT) and noise's σ (2 while the SSIM is near 1)
_PRIOR_POWERS = {"rho": 1.0, "q_max": 1.5, "eps": 1.5, "std": 1.5}


def budget_knob(attack: str) -> str:
    """The strength knob of ``attack`` (from the parameter table).

    Raises:
        ValueError: the attack has no monotone strength knob (DFB's band, for example).
    """
    taken = {p.engine for p in parameters_of(attack)}
    knob = next((k for k in KNOBS if k in taken), None)
    if knob is None:
        raise ValueError(f"attack must have a monotone strength knob for a target SSIM "
                         f"({', '.join(_attacks_with_knob())}), got {attack!r}.")
    return knob


def _attacks_with_knob() -> list[str]:
    from SpectrumAttackLib import attacks

    return [a for a in attacks.available() if {p.engine for p in parameters_of(a)} & set(KNOBS)]


@dataclass(frozen=True)
class SSIMLevel:
    """One target on one volume.

    Attributes:
        target: the target 3-D SSIM.
        budget: the knob's value found (0 or the knob's weakest value when only the clean image qualifies).
        ssim: the achieved 3-D SSIM (≥ target unless ``status`` says otherwise).
        status: ``reached``, ``projected``, ``unreachable``, ``below-at-weakest``, ``non-monotone`` or
            ``max-runs``.
        runs: attack runs the search had made when this level was settled (shared between levels).
        adversarial: ``[1, C, H, W, D]`` image of the chosen run (the clean image when none qualifies), or for
            ``projected`` ``clean + weight·(run − clean)``.
        result: what the attack call returned for that run (None for the clean image).
        weight: the interpolation weight λ of a ``projected`` level (its run's perturbation times λ); 1 otherwise.
    """

    target: float
    budget: float
    ssim: float
    status: str
    runs: int
    adversarial: torch.Tensor = field(repr=False)
    result: Any = field(default=None, repr=False)
    weight: float = 1.0

    def as_record(self) -> dict[str, Any]:
        """JSON-ready summary (no tensors)."""
        return {"target": self.target, "budget": self.budget, "ssim": self.ssim, "status": self.status,
                "runs": self.runs, "weight": self.weight}


@dataclass(frozen=True)
class SSIMTargetResult:
    """What :func:`at_ssim` returns for a batch: per volume, the budget found and how.

    Attributes:
        adversarial: ``[B, C, H, W, D]``, each volume's chosen image.
        budget_name: the knob (``eps``, ``rho``, ``q_max`` or ``std``).
        levels: one :class:`SSIMLevel` per volume.
    """

    adversarial: torch.Tensor
    budget_name: str
    levels: list[SSIMLevel]

    @property
    def budget(self) -> list[float]:
        return [level.budget for level in self.levels]

    @property
    def ssim(self) -> list[float]:
        return [level.ssim for level in self.levels]

    @property
    def runs(self) -> list[int]:
        return [level.runs for level in self.levels]

    @property
    def status(self) -> list[str]:
        return [level.status for level in self.levels]


@dataclass
class _Point:
    budget: float
    ssim: float
    adversarial: torch.Tensor
    result: Any = None


def ssim_to(clean: torch.Tensor) -> Callable[[torch.Tensor], float]:
    """The 3-D SSIM (the audit's, skimage's definition) to one clean ``[1, C, H, W, D]`` image, the mean over
    channels: ``adversarial [1, C, H, W, D] → float``; the clean image's window statistics are computed once."""
    from SpectrumAttackLib.metrics.volume_ssim import VolumeSSIM

    channels = [VolumeSSIM(clean[0, c]) for c in range(clean.shape[1])]
    return lambda adversarial: sum(ssim(adversarial[0, c]) for c, ssim in enumerate(channels)) / len(channels)


def _odds(ssim: float) -> float:
    """``log((1 − SSIM) / SSIM)``: the log SSIM deficit where it is small, and a curve that keeps rising linearly in
    log budget where the SSIM saturates (Gaussian noise: ``(1 − SSIM)/SSIM ≈ σ²/k``)."""
    ssim = min(max(ssim, _FLOOR), 1 - _FLOOR)
    return math.log((1 - ssim) / ssim)


def _deficit(point: _Point) -> float:
    return _odds(point.ssim)


def _power_law(a: _Point, b: _Point | None, goal: float, prior: float) -> float:
    """The budget where ``(1 − SSIM)/SSIM = c·budget^p`` through ``a`` (and ``b``) reaches ``goal``; one point:
    p = ``prior``."""
    power = prior
    if b is not None and a.budget != b.budget and a.ssim != b.ssim:
        power = (_deficit(b) - _deficit(a)) / math.log(b.budget / a.budget)
        power = min(max(power, _POWER_RANGE[0]), _POWER_RANGE[1])
    return a.budget * math.exp((_odds(goal) - _deficit(a)) / power)


def _monotone(points: Sequence[_Point], tolerance: float) -> bool:
    ordered = sorted(points, key=lambda p: p.budget)
    return all(later.ssim <= earlier.ssim + tolerance for earlier, later in itertools.pairwise(ordered))


def _project(clean: torch.Tensor, run: _Point, ssim_of: Callable[[torch.Tensor], float], target: float,
             tolerance: float, min_weight: float) -> tuple[float, torch.Tensor, float] | None:
    """The bisection projection of a run below ``target`` onto its band (Laidlaw et al. 2021's, onto an LPIPS ball
    there): a weight λ in ``[min_weight, 1)`` with ``target ≤ SSIM(clean + λ·(run − clean)) ≤ target + tolerance``,
    found by a secant in (log λ, model value), at most :data:`_PROJECTION_TRIES` SSIMs; None where ``min_weight``
    already falls below the target or no weight lands in the band. Returns ``(λ, image [1, C, H, W, D], SSIM)``."""
    delta = run.adversarial - clean
    goal, floor = _odds(target + tolerance / 2), math.log(min_weight)
    low: tuple[float, float] | None = None  # (log λ, model value) of a weight above the band
    high = (0.0, _odds(run.ssim))  # ... and of one below it: the run itself first
    for _ in range(_PROJECTION_TRIES):
        if low is None:  # from the run alone: the model value falls by 2·log λ
            guess = max(high[0] + (goal - high[1]) / 2, floor)
        else:
            guess = low[0] + (goal - low[1]) * (high[0] - low[0]) / (high[1] - low[1])
            margin = _SAFEGUARD * (high[0] - low[0])
            guess = min(max(guess, low[0] + margin), high[0] - margin)
        image = clean + math.exp(guess) * delta
        ssim = float(ssim_of(image))
        if target <= ssim <= target + tolerance:
            return math.exp(guess), image, ssim
        if ssim > target + tolerance:
            low = (guess, _odds(ssim))
        elif low is None and guess <= floor:
            return None
        else:
            high = (guess, _odds(ssim))
    return None


def search_levels(run_at: Callable[[float], tuple[torch.Tensor, Any]], ssim_of: Callable[[torch.Tensor], float],
                  clean: torch.Tensor, knob: str, targets: Sequence[float], *, start: float,
                  tolerance: float = 0.002, max_runs: int = 8, max_budget: float | None = None,
                  min_weight: float = 0.9) -> list[SSIMLevel]:
    """Find, on one volume, the strongest budget per target (see the module docstring); targets share the runs.

    Args:
        run_at: budget → (adversarial ``[1, C, H, W, D]``, the attack's result), a fresh seeded run.
        ssim_of: adversarial → 3-D SSIM to the clean image.
        clean: the clean ``[1, C, H, W, D]`` image (returned where no run qualifies).
        knob: a key of :data:`KNOBS`.
        targets: target SSIMs in (0, 1).
        start: the first budget tried.
        tolerance: how far above the target the achieved SSIM may be.
        max_runs: attack runs at most, over all targets.
        max_budget: the strongest budget tried; default the knob's largest value.
        min_weight: the smallest interpolation weight of a projection (``projected``); 1: attack runs only.

    Returns:
        One :class:`SSIMLevel` per target, in the order given.
    """
    weakest, strongest, zero_is_clean = KNOBS[knob]
    strongest = strongest if max_budget is None else min(float(max_budget), strongest)
    points: list[_Point] = [_Point(0.0, 1.0, clean)] if zero_is_clean else []
    runs = 0

    def measure(budget: float) -> _Point:
        nonlocal runs
        adversarial, result = run_at(budget)
        runs += 1
        point = _Point(budget, float(ssim_of(adversarial)), adversarial, result)
        points.append(point)
        points.sort(key=lambda p: p.budget)
        return point

    def settle(target: float, status: str) -> SSIMLevel:
        admissible = [p for p in points if p.ssim >= target]
        chosen = max(admissible, key=lambda p: p.budget) if admissible else min(points, key=lambda p: p.budget)
        return SSIMLevel(target, chosen.budget, chosen.ssim, status, runs, chosen.adversarial, chosen.result)

    def projected(target: float) -> SSIMLevel | None:
        """The level from the weakest run below it (stronger than every admissible run), projected onto its band
        by a weight ≥ ``min_weight``; each run is tried once per level."""
        best = max((p.budget for p in points if p.ssim >= target), default=-math.inf)
        upper = min((p for p in points if p.ssim < target and p.budget > best), key=lambda p: p.budget,
                    default=None)
        if min_weight >= 1 or upper is None or (upper.budget, target) in tried:
            return None
        tried.add((upper.budget, target))
        found = _project(clean, upper, ssim_of, target, tolerance, min_weight)
        if found is None:
            return None
        weight, image, ssim = found
        return SSIMLevel(target, upper.budget, ssim, "projected", runs, image, upper.result, weight)

    # where a projection may settle a level, a run that lands up to about 2·log(1/min_weight) below its band in the
    # model serves it: the aim goes to the middle of that wider window
    reach = 2 * _PROJECTION_REACH * math.log(1 / min_weight) if min_weight < 1 else 0.0
    tried: set[tuple[float, float]] = set()
    levels: dict[float, SSIMLevel] = {}
    sides: dict[float, list[bool]] = {}  # per target: whether each run made for it landed at or above it
    misses: dict[float, float] = {}  # per target: how far its last run landed from its band
    pending = sorted(set(targets), reverse=True)
    while pending:
        if not points or all(p.budget == 0 for p in points):
            measure(min(max(start, weakest), strongest))
        for target in list(pending):
            status = _settled(points, target, tolerance, weakest, strongest)
            if status is None and (level := projected(target)) is not None:
                levels[target] = level
                pending.remove(target)
                continue
            if status is None and runs >= max_runs:
                status = "max-runs"
            if status is not None:
                levels[target] = settle(target, status)
                pending.remove(target)
        if not pending:
            break
        unaimed = [t for t in pending if t not in sides]
        # the level nearest a run; but each level gets its own run before the runs are spent
        choice = unaimed if 0 < max_runs - runs <= len(unaimed) else pending
        target = min(choice, key=lambda t: _distance(points, t + tolerance / 2))
        history = sides.get(target, [])
        if not sides and len(pending) >= 3 and choice is pending:
            # the first aimed run goes to the middle level: it then brackets or flanks the others
            target = sorted(pending)[len(pending) // 2]
        elif len(history) >= 2 and history[-1] == history[-2] and choice is pending:
            # two runs for this level fell on one side of it: the next run goes to the farthest pending level on
            # the other side, whose run brackets this one (a stride that serves a level), when every run so far
            # is on that side
            beyond = [t for t in pending if (t < target if history[-1] else t > target)]
            if beyond and all((p.ssim >= target) == history[-1] for p in points if p.budget > 0):
                target = min(beyond) if history[-1] else max(beyond)
                history.clear()  # then inside a bracket: interpolation, not a bisection
        admissible = [p for p in points if p.ssim >= target]
        best = max(admissible, key=lambda p: p.budget) if admissible else None
        upper = min((p for p in points if p.ssim < target and (best is None or p.budget > best.budget)),
                    key=lambda p: p.budget, default=None)
        history = sides.setdefault(target, [])
        # two runs for this level on one side of it: stalled, unless the last one missed the band by less than its
        # width (then the curve near the level is known well enough to aim again, not to bisect)
        stalled = len(history) >= 2 and history[-1] == history[-2] and misses[target] > tolerance
        goal = 1 / (1 + math.exp((_odds(target + tolerance) + _odds(target) + reach) / 2))
        last = choice is not pending and (best is None or best.budget == 0)
        if last:
            # a level's last chance (its only run, no admissible run yet) aims a tolerance above the band (in the
            # model): an admissible image rather than the clean one when the aim misses by up to 4× more
            goal = 1 / (1 + math.exp(2 * _odds(target + tolerance) - _odds(target)))
        point = measure(_next_budget(points, best, upper, goal, weakest, strongest, stalled, _PRIOR_POWERS[knob],
                                     cautious=last))
        history.append(point.ssim >= target)
        misses[target] = min(abs(point.ssim - target), abs(point.ssim - target - tolerance))
    return [levels[t] for t in targets]


def _settled(points: Sequence[_Point], target: float, tolerance: float, weakest: float,
             strongest: float) -> str | None:
    """The status of ``target`` if the runs so far settle it (see the module docstring), else None."""
    if not _monotone(points, tolerance):
        return "non-monotone"
    admissible = [p for p in points if p.ssim >= target]
    best = max(admissible, key=lambda p: p.budget) if admissible else None
    if best is not None and best.ssim - target <= tolerance:
        return "reached"
    upper = min((p for p in points if p.ssim < target and (best is None or p.budget > best.budget)),
                key=lambda p: p.budget, default=None)
    if upper is None and best is not None and best.budget >= strongest:
        return "unreachable"
    if best is None and upper is not None and upper.budget <= weakest:
        return "below-at-weakest"
    return None


def _distance(points: Sequence[_Point], goal: float) -> float:
    """How far (in log SSIM deficit) the nearest run is from ``goal``; infinite before any run."""
    return min((abs(_deficit(p) - _odds(goal)) for p in points if p.budget > 0 and p.ssim < 1),
               default=math.inf)


def _curved(points: Sequence[_Point], goal: float, near: float) -> float | None:
    """The budget where a quadratic in log–log through three runs reaches ``goal`` (the root nearest ``near``),
    or None where that curve is not increasing there within the power range. Outside the runs' SSIMs too: the
    curve's slope changes with the budget (PGD's 1.05 at ε 8 to 1.85 at ε 1 on the sample CT), which a line
    through two runs misses by more than the tolerance."""
    x = [math.log(p.budget) for p in points]
    y = [_deficit(p) for p in points]
    if len(set(x)) < 3:
        return None
    c2, c1, c0 = np.polyfit(x, y, 2)
    roots = [r.real for r in np.roots([c2, c1, c0 - _odds(goal)]) if abs(r.imag) < 1e-12] \
        if abs(c2) > 1e-12 else [(_odds(goal) - c0) / c1]
    if not roots:
        return None
    root = min(roots, key=lambda r: abs(r - math.log(near)))
    slope = 2 * c2 * root + c1
    return math.exp(root) if _POWER_RANGE[0] <= slope <= _POWER_RANGE[1] else None


def _next_budget(points: Sequence[_Point], best: _Point | None, upper: _Point | None, goal: float,
                 weakest: float, strongest: float, stalled: bool, prior: float, cautious: bool = False) -> float:
    """The next budget for the SSIM ``goal``: a curve through the measured runs nearest it (a quadratic in log–log
    through three, else a power law through two), interpolated inside the bracket ``[best, upper]`` (a geometric
    bisection when the last two runs fell on one side), extrapolated outside it (at least a factor 1.5 from the
    nearest run after two runs on one side)."""
    measured = sorted((p for p in points if p.budget > 0 and p.ssim < 1),
                      key=lambda p: abs(_deficit(p) - _odds(goal)))
    guess = _curved(measured[:3], goal, measured[0].budget) if len(measured) >= 3 else None
    if best is not None and best.budget > 0 and upper is not None:  # inside a bracket of two runs
        low, high = math.log(best.budget), math.log(upper.budget)
        if stalled:
            return math.exp((low + high) / 2)
        if guess is None or not best.budget < guess < upper.budget:
            guess = _power_law(best, upper, goal, prior)
        margin = _SAFEGUARD * (high - low)
        return math.exp(min(max(math.log(guess), low + margin), high - margin))
    if not measured:  # only the clean image so far
        return min(2 * best.budget, strongest) if best is not None else weakest
    if guess is None or cautious:  # the nearest run and the run farthest from it in budget (at least 10 % away)
        # whose model value is within _NEAR of the goal's: a long chord averages an optimiser's bumps; saturated runs
        # say nothing. A last chance takes the weaker of it and the quadratic's (bumps read as a curvature mislead)
        near = [p for p in measured[1:] if abs(_deficit(p) - _odds(goal)) <= _NEAR]
        second = max((p for p in near if abs(math.log(p.budget / measured[0].budget)) >= 0.1), default=None,
                     key=lambda p: abs(math.log(p.budget / measured[0].budget)))
        far = abs(_deficit(measured[0]) - _odds(goal)) > _NEAR
        chord = _power_law(measured[0], None if far else second, goal, prior)
        guess = chord if guess is None else min(guess, chord)
    step = _STALLED_STEP if stalled else _MIN_STEP  # a flat stretch (SA²'s SSIM term holds the SSIM): stride out
    if upper is None:  # every run at or above the target: go stronger
        assert best is not None
        return min(max(guess, best.budget * step), strongest)
    guess = min(guess, upper.budget / step)
    return max(guess, weakest) if weakest > 0 else max(guess, upper.budget * 1e-3)


def at_ssim(name: str, model: torch.nn.Module, target_ssim: float, tolerance: float = 0.002, *,
            images: torch.Tensor, labels: torch.Tensor, params: dict[str, Any] | None = None, max_runs: int = 8,
            max_budget: float | None = None, min_weight: float = 0.9,
            attack_fn: Callable[[Any, torch.Tensor, torch.Tensor], Any] | None = None) -> SSIMTargetResult:
    """Attack each volume at the strongest budget whose image keeps a 3-D SSIM ≥ ``target_ssim``.

    Args:
        name: attack name with a strength knob (:func:`budget_knob`).
        model: the segmentation network.
        target_ssim: the target 3-D SSIM, in (0, 1).
        tolerance: the achieved SSIM lies in ``[target, target + tolerance]`` when reached. Default 0.002.
        images: ``[B, C, H, W, D]`` in [0, 1], every spatial axis ≥ 7.
        labels: ``[B, 1, H, W, D]`` class map (ground truth or the clean prediction).
        params: the attack's other parameters (the knob's value, if given, is the first budget tried; the seed
            is the same for every run).
        max_runs: attack runs at most per volume. Default 8.
        max_budget: the strongest budget tried; default the knob's largest value.
        min_weight: the smallest interpolation weight with which a run below the target may be projected onto
            it (status ``projected``), in (0, 1]; 1: attack runs only. Default 0.9.
        attack_fn: ``(attack, images, labels) → result`` with ``result.adversarial`` (default: ``attack(images,
            labels)``); the whole-volume workflows pass their tiled run here.

    Returns:
        :class:`SSIMTargetResult`.

    Raises:
        ValueError: an attack without a knob, a target outside (0, 1), a bad tolerance or run count.

    Example:
        >>> found = attacks.at_ssim("pgd", model, 0.97, images=images, labels=labels, params={"steps": 10})
        >>> found.budget, found.ssim, found.runs, found.status
    """
    from SpectrumAttackLib import attacks

    knob = budget_knob(name)
    target_ssim = check_range("target_ssim", target_ssim, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    tolerance = check_range("tolerance", tolerance, 0.0, 1.0, low_inclusive=False)
    max_runs = check_int("max_runs", max_runs, 1)
    min_weight = check_range("min_weight", min_weight, 0.0, 1.0, low_inclusive=False)
    params = dict(params or {})
    default = float(attacks.attack_parameters(name)[knob])
    start = float(params.pop(knob, default))
    start = start if start > KNOBS[knob][0] else default
    run = attack_fn or (lambda attack, x, y: attack(x, y))
    levels = []
    for i in range(images.shape[0]):
        x, y = images[i : i + 1], labels[i : i + 1]

        def run_at(budget: float, x: torch.Tensor = x, y: torch.Tensor = y) -> tuple[torch.Tensor, Any]:
            result = run(attacks.create(name, model, **params, **{knob: budget}), x, y)
            return result.adversarial, result

        levels += search_levels(run_at, ssim_to(x), x, knob, [target_ssim],
                                start=start, tolerance=tolerance,
                                max_runs=max_runs, max_budget=max_budget, min_weight=min_weight)
    adversarial = torch.cat([level.adversarial.to(images.device, images.dtype) for level in levels])
    return SSIMTargetResult(adversarial, knob, levels)
