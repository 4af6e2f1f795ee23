"""APGD-L∞: auto-PGD with momentum and checkpoint-based step-size halving, and SEA's progressive radius.

Croce & Hein, "Reliable Evaluation of Adversarial Robustness with an Ensemble of Diverse Parameter-free Attacks",
ICML 2020, arXiv:2003.01690 (Algorithm 1); for segmentation as in SEA (Croce, Singh, Hein, ECCV 2024,
``nmndeep/Robust-Segmentation`` ``semseg/attacker.py`` ``apgd_train`` / ``apgd_largereps``). Per volume of the batch:

- step size η starts at 2·r (r the radius of the current ball); the first step of a stage is a plain sign step,
  later ones ``z = P(x + η·sign ∇)``, ``x ← P(x + 0.75·(z − x) + 0.25·(x − x_prev))``;
- checkpoints after ``p_1 = 0.22`` of a stage's steps, each window ``0.03`` shorter than the previous one but at
  least ``0.06`` (AutoAttack's ``n_iter_2``, ``size_decr``, ``n_iter_min``); at a checkpoint η is halved and the
  iterate reset to the best-loss point (with its gradient) when the loss rose in at most 75 % of the window's steps
  (AutoAttack's and SEA's code count ``≤``; the paper writes ``<``) or when η was not halved at the last checkpoint
  and the best loss has not improved since;
- the loss this bookkeeping tracks is the voxel-mean cross-entropy whatever ``loss`` is attacked (SEA's
  ``track_loss="ce-avg"``): the masked losses shrink as voxels are fooled, so "the loss rose" on them would read
  progress as failure; with SEA's losses it is the cross-entropy the attacked loss already computed from the same
  logits (:meth:`~SpectrumAttackLib.attacks.voxel_losses.VoxelLoss.cross_entropy`), so a step runs one softmax;
- the returned iterate is the evaluated one with the lowest Dice vs ``labels`` (SEA keeps the lowest pixel
  accuracy; Dice is the figure the audit reports); targeted: the highest Dice vs the target.

``progressive_radius`` (SEA's ``apgd_largereps``): 30 % of the steps at 2ε, 30 % at 1.5ε, 40 % at ε; each stage
restarts the schedule above from the previous stage's best iterate projected into the new ball, and only the last
stage's iterates (inside the ε ball) can be returned. The early stop (every voxel fooled) applies in the last stage
only; SEA's code stops a stage early and moves to the next one, which changes the stage lengths.

``steps`` counts gradient evaluations, the loop's unit: a stage of n steps scores x_0 … x_{n−1}; the last stage's
final iterate is scored by one more forward pass, without a backward pass.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from SpectrumAttackLib.attacks.base import StepRule, _Run, forward_logits
from SpectrumAttackLib.attacks.losses import LossFn, class_map
from SpectrumAttackLib.attacks.pgd import PGD
from SpectrumAttackLib.attacks.voxel_losses import VoxelLoss
from SpectrumAttackLib.metrics.overlap import dice_per_sample

__all__ = ["APGD", "checkpoint_steps", "stage_plan"]

MOMENTUM = 0.75
#: AutoAttack's checkpoint constants: first window, shrink per checkpoint, shortest window (fractions of the steps).
FIRST_WINDOW, WINDOW_DECREASE, SHORTEST_WINDOW = 0.22, 0.03, 0.06
#: the fraction of the window's steps whose loss must rise for η to be kept.
RISE_FRACTION = 0.75
#: SEA's progressive radius: (fraction of the steps, multiple of ε) per stage.
PROGRESSIVE = ((0.3, 2.0), (0.3, 1.5), (0.4, 1.0))


def checkpoint_steps(steps: int) -> list[int]:
    """The evaluations (1-based step counts from a stage's start) after which a checkpoint is checked."""
    window = max(int(FIRST_WINDOW * steps), 1)
    shrink, shortest = max(int(WINDOW_DECREASE * steps), 1), max(int(SHORTEST_WINDOW * steps), 1)
    points, at = [], window
    while at < steps:
        points.append(at)
        window = max(window - shrink, shortest)
        at += window
    return points


def stage_plan(steps: int, eps: float, progressive: bool) -> list[tuple[int, float]]:
    """``[(steps, radius on the 0–255 scale), ...]`` per stage (SEA rounds the first two stages down)."""
    if not progressive:
        return [(steps, eps)]
    first, second = (int(fraction * steps) for fraction, _ in PROGRESSIVE[:2])
    lengths = (first, second, steps - first - second)
    return [(n, multiple * eps) for n, (_, multiple) in zip(lengths, PROGRESSIVE, strict=True) if n > 0]


class _APGDRule(StepRule):
    """The per-restart state of APGD: stage, step sizes, momentum memory, best-loss and best-Dice iterates."""

    def __init__(self, attack: APGD, run: _Run) -> None:
        super().__init__(attack, run)
        self.stages = stage_plan(attack.steps, attack.eps, attack.progressive_radius)
        self.ends = [sum(n for n, _ in self.stages[: i + 1]) for i in range(len(self.stages))]
        self.sign = -1.0 if attack.targeted else 1.0
        self._begin_stage(0, None)

    def _begin_stage(self, index: int, variable: torch.Tensor | None) -> torch.Tensor | None:
        steps, eps = self.stages[index]
        self.stage, self.radius, self.evaluated = index, eps / 255.0, 0
        batch = self.run.images.shape[0]
        self.step_size = torch.full((batch, *[1] * (self.run.images.dim() - 1)), 2 * self.radius,
                                    device=self.run.images.device)
        self.checkpoints = set(checkpoint_steps(steps))
        self.previous: torch.Tensor | None = None
        self.losses: list[torch.Tensor] = []
        self.best_loss = self.best_loss_variable = self.best_grad = None
        self.best_at_check: torch.Tensor | None = None
        self.halved_at_check = torch.ones(batch, dtype=torch.bool, device=self.run.images.device)
        self.best_score = self.best_variable = None
        self.last_check = 0
        return None if variable is None else self._project(variable, self.radius)

    def _project(self, delta: torch.Tensor, radius: float) -> torch.Tensor:
        images = self.run.images
        return (images + delta.clamp(-radius, radius)).clamp(0.0, 1.0) - images

    def _per_volume(self, mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return mask.view(-1, *[1] * (like.dim() - 1))

    def _score(self, logits: torch.Tensor) -> torch.Tensor:
        """Per volume, lower is better for the attacker: Dice vs labels (targeted: minus Dice vs the target)."""
        if not self.attack.targeted:
            return self.run.dice
        dice = dice_per_sample(class_map(logits), self.run.goal, logits.shape[1])
        return -dice.to(self.run.images.device)

    def _keep_best_iterate(self, variable: torch.Tensor, logits: torch.Tensor) -> None:
        score = self._score(logits)
        if self.best_score is None:
            self.best_score, self.best_variable = score.clone(), variable.clone()
            return
        better = score <= self.best_score  # SEA: a later iterate of equal accuracy replaces the earlier one
        self.best_variable = torch.where(self._per_volume(better, variable), variable, self.best_variable)
        self.best_score = torch.minimum(score, self.best_score)

    def _cross_entropy(self, logits: torch.Tensor) -> torch.Tensor:
        """The tracked loss: voxel-mean cross-entropy to the goal per volume ``[B]`` (the attacked loss's own when it
        computed it from these logits)."""
        loss_fn = self.attack.loss_fn
        if isinstance(loss_fn, VoxelLoss):
            return loss_fn.cross_entropy(logits, self.run.goal)
        return F.cross_entropy(logits, self.run.goal[:, 0], reduction="none").flatten(1).mean(1)

    def update(self, variable: torch.Tensor, grad: torch.Tensor, logits: torch.Tensor, t: int) -> torch.Tensor:
        self._keep_best_iterate(variable, logits)
        loss = self.sign * self._cross_entropy(logits)
        self.evaluated += 1
        if self.best_loss is None:
            self.best_loss, self.best_loss_variable, self.best_grad = loss, variable.clone(), grad.clone()
            self.best_at_check = loss.clone()
        else:
            improved = loss > self.best_loss
            self.best_loss_variable = torch.where(self._per_volume(improved, variable), variable,
                                                  self.best_loss_variable)
            self.best_grad = torch.where(self._per_volume(improved, grad), grad, self.best_grad)
            self.best_loss = torch.maximum(loss, self.best_loss)
        self.losses.append(loss)
        if t + 1 == self.ends[self.stage] and self.stage + 1 < len(self.stages):
            return self._begin_stage(self.stage + 1, self.best_variable)
        if self.evaluated - 1 in self.checkpoints:
            variable, grad = self._checkpoint(variable, grad)
        return self._step(variable, grad)

    def _checkpoint(self, variable: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Halve η and return to the best-loss point where the window's loss rarely rose or stalled."""
        window = len(self.losses) - 1 - self.last_check
        rises = sum((b > a).float() for a, b in zip(self.losses[-window - 1:-1], self.losses[-window:], strict=True))
        oscillating = rises <= window * RISE_FRACTION
        stalled = ~self.halved_at_check & (self.best_at_check >= self.best_loss)
        halve = oscillating | stalled
        self.halved_at_check, self.best_at_check = halve, self.best_loss.clone()
        self.last_check = len(self.losses) - 1
        self.step_size = torch.where(self._per_volume(halve, self.step_size), self.step_size / 2, self.step_size)
        mask = self._per_volume(halve, variable)
        return torch.where(mask, self.best_loss_variable, variable), torch.where(mask, self.best_grad, grad)

    def _step(self, variable: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        towards = self._project(variable + self.step_size * grad.sign(), self.radius)
        if self.previous is None:
            moved = towards
        else:
            moved = self._project(variable + MOMENTUM * (towards - variable)
                                  + (1 - MOMENTUM) * (variable - self.previous), self.radius)
        self.previous = variable
        return moved

    def may_stop(self, t: int) -> bool:
        return self.stage == len(self.stages) - 1

    def final(self, variable: torch.Tensor) -> torch.Tensor:
        adversarial = self.attack.render(self.run.images, variable, self.run.context, self.attack.steps)
        logits = forward_logits(self.attack.model, adversarial, self.run.precision)
        self.run.dice = dice_per_sample(class_map(logits), self.run.labels, logits.shape[1]).to(variable.device)
        self._keep_best_iterate(variable, logits)
        return self.best_variable


class APGD(PGD):
    """APGD with an L∞ budget and a selectable loss (see the module docstring).

    Args:
        model, loss_fn, steps, seed, targeted, restarts, early_stop, clip_input, precision: see :class:`Attack`.
        eps: L∞ budget on the 0–255 scale (4 means 4/255 in [0, 1] intensity units); 0 ≤ eps ≤ 255. Default 4.
        loss: the attacked loss, one of :data:`~SpectrumAttackLib.attacks.voxel_losses.LOSSES`. Default
            ``"dice-ce"``.
        progressive_radius: SEA's schedule of 2ε, 1.5ε, ε (30 / 30 / 40 % of the steps). Default False.
        random_start: start from ``U(−r, r)`` noise, r the first stage's radius. Default True.

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``δ = adversarial − images``, same shape.

    Example:
        >>> result = APGD(model, eps=8, loss="masked-ce", steps=100, progressive_radius=True)(images, labels)
    """

    name = "apgd"
    paper = ("Croce & Hein, Reliable Evaluation of Adversarial Robustness with an Ensemble of Diverse "
             "Parameter-free Attacks, ICML 2020; SEA: Croce, Singh, Hein, ECCV 2024")
    fixed_params: ClassVar[frozenset[str]] = frozenset({"alpha"})

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *, eps: float = 4.0,
                 progressive_radius: bool = False, **kwargs: Any) -> None:
        super().__init__(model, loss_fn, eps=eps, **kwargs)
        self.progressive_radius = bool(progressive_radius)

    @property
    def config(self) -> dict[str, Any]:
        return {k: v for k, v in super().config.items() if k != "alpha"}

    @property
    def radius(self) -> float:
        """The largest radius of the schedule in [0, 1] intensity units (the random start's and the outer ball)."""
        return max(eps for _, eps in stage_plan(self.steps, self.eps, self.progressive_radius)) / 255.0

    def step_rule(self, run: _Run) -> StepRule:
        return _APGDRule(self, run)

