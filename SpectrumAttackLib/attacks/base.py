"""The attack base class and the one optimisation loop every attack shares.

An attack is a parameterisation of one variable (ξ for SA², q for VAFA, δ for the voxel attacks): it says how
the variable starts (:meth:`Attack.init_variable`), how it becomes an image (:meth:`Attack.render`) and which set
it is projected onto (:meth:`Attack.project`); an attack that averages input gradients over random transforms of
the image (SSA) also says how the transforms are drawn (:meth:`Attack.views`). The loop here owns everything
else: input checks, model hygiene (eval mode, frozen parameters, both restored), seeding, the precision of the
model passes, gradients with respect to the variable only, restarts, the optional early stop of the reference,
history and progress.

Under a mixed precision (``precision="bf16"`` or ``"fp16"``) only the model's forward pass, and through autograd its
backward pass, runs under autocast (:func:`forward_logits`); the variable, the rendering (block DCT), SSIM, the loss
and the history stay float32.
"""

from __future__ import annotations

import abc
import itertools
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from SpectrumAttackLib.attacks.losses import LossFn, ReferenceSSIM, class_map, dice_ce_loss
from SpectrumAttackLib.checks import check_int
from SpectrumAttackLib.metrics.overlap import dice_per_sample
from SpectrumAttackLib.precision import Precision, check_precision, resolve_precision
from SpectrumAttackLib.runtime import Progress, ProgressCallback, make_generator

__all__ = ["Attack", "AttackResult", "StepRule", "forward_logits", "frozen_model", "logits_of", "model_device"]


@dataclass(frozen=True)
class AttackResult:
    """What an attack call returns.

    Attributes:
        adversarial: ``[B, C, H, W, D]``, the input's dtype and device, values in [0, 1].
        state: the optimised variable, detached, on the model's device; its layout is given in each attack's
            docstring.
        history: per step ``loss`` (the maximised objective), ``dice`` (mean foreground Dice of the prediction vs
            ``labels``) and ``ssim`` (3D SSIM of the unclamped adversarial vs the clean images); with restarts the
            lists run on across restarts and ``restart`` gives each entry's restart index. One-shot attacks (GN,
            DFB) have one entry, scoring their output.
        seconds: wall-clock time of the call.
        steps_run: optimisation steps taken (summed over restarts).
        stopped_early: whether the early-stop rule ended the (last) restart.
        config: every parameter of the attack, in Lib units, plus ``precision_used`` (``"fp32"``, ``"bf16"`` or
            ``"fp16"``: what ``precision`` resolved to on the model's device).
    """

    adversarial: torch.Tensor
    state: torch.Tensor
    history: dict[str, list[float]]
    seconds: float
    steps_run: int
    stopped_early: bool
    config: dict[str, Any] = field(default_factory=dict)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a model without tensors."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def frozen_model(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and ``requires_grad=False`` on every parameter; each module's mode and flag restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)


@dataclass
class _Run:
    """What one restart of the loop works on (kept in a local object, never on the attack)."""

    images: torch.Tensor
    labels: torch.Tensor
    goal: torch.Tensor
    context: Any
    similarity: ReferenceSSIM
    precision: Precision
    history: dict[str, list[float]]
    restart: int
    progress: ProgressCallback | None
    generator: torch.Generator
    #: per-sample Dice ``[B]`` of the last evaluated prediction vs ``labels``.
    dice: torch.Tensor | None = None


class StepRule:
    """How one restart moves the variable between evaluations: by default :meth:`Attack.step` then
    :meth:`Attack.project`. An attack with per-restart state (APGD's step sizes, momentum and best iterates) gives
    its own rule (:meth:`Attack.step_rule`); the loop stays the one loop.

    Args:
        attack: the attack.
        run: the restart (images, labels, goal, context, ...).
    """

    def __init__(self, attack: Attack, run: _Run) -> None:
        self.attack = attack
        self.run = run

    def update(self, variable: torch.Tensor, grad: torch.Tensor, logits: torch.Tensor, t: int) -> torch.Tensor:
        """The next variable (projected) from the one just evaluated at step ``t``, its gradient and its logits."""
        return self.attack.project(self.attack.step(variable, grad, t), self.run.images, self.run.context)

    def may_stop(self, t: int) -> bool:
        """Whether the early-stop rule may end the restart at step ``t``."""
        return True

    def final(self, variable: torch.Tensor) -> torch.Tensor:
        """The variable the restart returns, given the last (not yet evaluated) one. Default: that one."""
        return variable


def logits_of(output: Any) -> torch.Tensor:
    """Networks with deep supervision return a list; the first entry is the full-resolution output."""
    return output[0] if isinstance(output, (list, tuple)) else output


def forward_logits(model: nn.Module, images: torch.Tensor, precision: Precision) -> torch.Tensor:
    """``model(images)`` with only the model under ``precision``'s autocast; logits ``[B, K, H, W, D]`` float32.

    The one place where a model pass gets its precision: attacks, sliding-window inference and training call it,
    so every loss, softmax and metric downstream sees float32 logits (a no-op cast under fp32).
    """
    with precision.autocast():
        output = model(images)
    return logits_of(output).float()


class Attack(abc.ABC):
    """Base of every attack: ``attack(images, labels) → AttackResult``.

    Args:
        model: a segmentation network ``[B, C, H, W, D] → logits [B, K, H, W, D]``; the attack runs on its device.
        loss_fn: segmentation loss ``(logits, labels) → scalar``; default the reference's DiceCE
            (:func:`~SpectrumAttackLib.attacks.losses.dice_ce_loss`).
        steps: optimisation steps, ≥ 1 for iterative attacks. Default 20 (the seed's CLI default).
        seed: seed of the call's ``torch.Generator``; the same seed gives the same result. Default 0.
        targeted: minimise the loss towards ``target_labels`` given at call time instead of maximising it
            against ``labels``. Default False.
        restarts: independent runs (seeds ``seed, seed+1, ...``); each sample keeps its run with the lowest Dice
            vs ``labels`` (targeted: the highest Dice vs the target). Default 1.
        early_stop: the reference's rule: stop once every voxel is misclassified (targeted: every voxel equals
            the target). Default False.
        clip_input: clamp input images into [0, 1] instead of rejecting values outside. Default False.
        precision: numeric precision of the model's forward and backward passes: ``"auto"`` (bf16 on CPUs with
            AMX/AVX512-BF16 and on CUDA GPUs with bf16, else fp32), ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA only);
            see :mod:`SpectrumAttackLib.precision`. Resolved on the model's device at each call. Default "auto".
    """

    name: ClassVar[str]
    paper: ClassVar[str] = ""
    #: base parameters this attack does not take (e.g. non-iterative attacks fix ``steps``).
    fixed_params: ClassVar[frozenset[str]] = frozenset()
    #: False where :meth:`objective` has its own loss (SegPGD, CosPGD): a given ``loss_fn`` then only warns.
    uses_loss_fn: ClassVar[bool] = True
    #: True where the step needs the gradient at the image besides the views' mean (VMI-FGSM's variance term): the
    #: loop then computes both and hands them to :meth:`merge_gradients`.
    image_gradient_with_views: ClassVar[bool] = False
    #: size of the default sign-gradient ascent step (set by each attack from its own parameter).
    _step_size: float = 0.0
    #: weights of the segmentation loss and of the perceptual penalty in :meth:`objective`.
    _seg_weight: float = 1.0
    _ssim_weight: float = 0.0

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn | None = None,
        *,
        steps: int = 20,
        seed: int = 0,
        targeted: bool = False,
        restarts: int = 1,
        early_stop: bool = False,
        clip_input: bool = False,
        precision: str = "auto",
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {loss_fn!r}.")
        if loss_fn is not None and not self.uses_loss_fn:
            warnings.warn(f"loss_fn is ignored by {self.name}, whose objective is its own per-voxel loss.",
                          stacklevel=3)
        self.model = model
        self.loss_fn: LossFn = loss_fn if loss_fn is not None else dice_ce_loss()
        self.steps = check_int("steps", steps, 0 if "steps" in self.fixed_params else 1)
        self.seed = check_int("seed", seed, 0)
        self.targeted = bool(targeted)
        self.restarts = check_int("restarts", restarts, 1)
        self.early_stop = bool(early_stop)
        self.clip_input = bool(clip_input)
        self.precision = check_precision(precision)

    # ----------------------------------------------------------------------------------- what attacks define
    def prepare(self, images: torch.Tensor) -> Any:
        """Constants of one call computed once (clean DCT coefficients, masks). Default: none."""
        return None

    @abc.abstractmethod
    def init_variable(self, images: torch.Tensor, context: Any, generator: torch.Generator) -> torch.Tensor:
        """The starting value of the optimised variable (drawn from ``generator`` only)."""

    @abc.abstractmethod
    def render(self, images: torch.Tensor, variable: torch.Tensor, context: Any, t: int) -> torch.Tensor:
        """The (unclamped) adversarial images ``[B, C, H, W, D]`` for the variable at step ``t``."""

    @abc.abstractmethod
    def project(self, variable: torch.Tensor, images: torch.Tensor, context: Any) -> torch.Tensor:
        """Project the variable onto the attack's constraint set."""

    def step(self, variable: torch.Tensor, grad: torch.Tensor, t: int) -> torch.Tensor:
        """Ascent step on the objective. Default: sign-gradient step of ``self._step_size``."""
        return variable + self._step_size * grad.sign()

    def step_rule(self, run: _Run) -> StepRule:
        """The per-restart update rule of the loop (:class:`StepRule`). Default: sign step and projection."""
        return StepRule(self, run)

    def views(self, adversarial: torch.Tensor, context: Any, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Random transforms of the adversarial images whose input gradients, averaged, drive the step.

        Each yielded view ``[B, C, H, W, D]`` is scored by the objective on its own (one forward and backward pass
        at a time, so memory stays that of one pass); the mean of the gradients with respect to the views replaces
        the gradient with respect to the adversarial images and is pulled back through :meth:`render` to the
        variable. Default: no views, the gradient at the adversarial images themselves.
        """
        return iter(())

    def merge_gradients(self, image_grad: torch.Tensor | None, views_grad: torch.Tensor) -> torch.Tensor:
        """The gradient :meth:`step` receives when the attack has views: both arguments are gradients with respect to
        the variable (``image_grad`` only when :attr:`image_gradient_with_views`, else None). Default: the views'."""
        return views_grad

    def variable_from_state(self, state: torch.Tensor, images: torch.Tensor, context: Any) -> torch.Tensor:
        """The variable that ``init_state`` (layout of :attr:`AttackResult.state`) starts from. Default: the state
        itself; an attack whose variable carries more (a momentum) fills the rest."""
        return state

    def perceptual_penalty(self, similarity: ReferenceSSIM, adversarial: torch.Tensor, context: Any) -> torch.Tensor:
        """Dissimilarity the loop subtracts, times the SSIM weight, from :meth:`objective`.

        Default ``1 − SSIM3D(clean, adversarial)`` through ``similarity`` (which the step's history then reuses);
        ``similarity.images`` are the clean images.
        """
        return 1 - similarity(adversarial)

    def objective(
        self, logits: torch.Tensor, goal: torch.Tensor, images: torch.Tensor, adversarial: torch.Tensor,
        context: Any, t: int,
    ) -> torch.Tensor:
        """Segmentation objective to maximise: ``±λ_dice·loss(logits, goal)`` (minus when targeted).

        The loop subtracts ``λ_ssim·``:meth:`perceptual_penalty` from it when the attack has an SSIM term.
        """
        seg = self.loss_fn(logits, goal)
        return (-seg if self.targeted else seg) * self._seg_weight

    @property
    def random_init(self) -> bool:
        """Whether :meth:`init_variable` draws from the generator (restarts then differ). Default True."""
        return True

    def state_of(self, variable: torch.Tensor, images: torch.Tensor, adversarial: torch.Tensor,
                 context: Any) -> torch.Tensor:
        """What :attr:`AttackResult.state` holds. Default: the variable itself."""
        return variable

    # --------------------------------------------------------------------------------------- configuration
    @property
    def config(self) -> dict[str, Any]:
        """Every public parameter of this attack (Lib units) plus its name."""
        out: dict[str, Any] = {"attack": self.name}
        for key, value in vars(self).items():
            if key.startswith("_") or key in ("model", "loss_fn"):
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "attack")
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------------------------------- the loop
    def __call__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        target_labels: torch.Tensor | None = None,
        init_state: torch.Tensor | None = None,
        progress: ProgressCallback | None = None,
    ) -> AttackResult:
        """Attack a batch.

        Args:
            images: ``[B, C, H, W, D]`` float in [0, 1].
            labels: ``[B, 1, H, W, D]`` integer class map (ground truth, or the clean prediction).
            target_labels: ``[B, 1, H, W, D]`` class map the model should output; required when ``targeted``.
            init_state: start from this variable (layout of :attr:`AttackResult.state`) instead of a seeded draw
                (first restart only), to reproduce a run or compare with another implementation.
            progress: called after every step with ``Progress(done, total, "attack", message)``.

        Returns:
            An :class:`AttackResult`; ``adversarial`` has the input's shape, dtype and device.

        Raises:
            ValueError: bad shapes, values or class counts, named in the message; a precision the model's device
                cannot run (``fp16`` off CUDA).
        """
        start = time.perf_counter()
        self._check_inputs(images, labels, target_labels)
        if self.restarts > 1 and not self.random_init:
            warnings.warn(f"restarts={self.restarts} repeats identical runs: {self.name} with these parameters "
                          f"starts deterministically.", stacklevel=2)
        device = model_device(self.model)
        precision = resolve_precision(self.precision, device)
        x = images.detach().to(device=device, dtype=torch.float32)
        if self.clip_input:
            x = x.clamp(0.0, 1.0)
        y = labels.detach().to(device=device, dtype=torch.long)
        goal = y if target_labels is None else target_labels.detach().to(device=device, dtype=torch.long)
        history: dict[str, list[float]] = {"loss": [], "dice": [], "ssim": [], "restart": []}
        best: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        steps_run = 0
        stopped = False
        with frozen_model(self.model), torch.enable_grad():
            context = self.prepare(x)
            similarity = ReferenceSSIM(x)
            for restart in range(self.restarts):
                generator = make_generator(self.seed + restart, device)
                if init_state is not None and restart == 0:
                    variable = self._initial_from(init_state, x, context, generator)
                else:
                    variable = self.init_variable(x, context, generator)
                run = _Run(x, y, goal, context, similarity, precision, history, restart, progress, generator)
                adv, state, steps, stopped = self._optimise(self.project(variable, x, context), run)
                steps_run += steps
                best = (adv, state, None) if self.restarts == 1 else self._keep_worst(adv, state, run, best)
        adversarial, state, _ = best
        return AttackResult(
            adversarial=adversarial.to(device=images.device, dtype=images.dtype),
            state=state,
            history=history,
            seconds=time.perf_counter() - start,
            steps_run=steps_run,
            stopped_early=stopped,
            config={**self.config, "precision_used": precision.name},
        )

    def _optimise(self, variable: torch.Tensor, run: _Run) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
        """One restart: ``steps`` ascent steps (none for one-shot attacks); returns (adv, state, steps, stopped)."""
        x, context = run.images, run.context
        total = max(self.steps, 1) * self.restarts
        rule = self.step_rule(run)
        t = 0
        for t in range(self.steps):
            variable = variable.detach().requires_grad_(True)
            adv = self.render(x, variable, context, t)
            views = self.views(adv.detach(), context, run.generator)
            first = next(views, None)
            if first is None:
                logits = forward_logits(self.model, adv, run.precision)
                value, pred = self._evaluate(logits, adv, run, t)
                (grad,) = torch.autograd.grad(value, variable)
            else:  # the image itself is scored (history, early stop); the views give the direction
                image_grad = None
                if self.image_gradient_with_views:
                    logits = forward_logits(self.model, adv, run.precision)
                    value, pred = self._evaluate(logits, adv, run, t)
                    (image_grad,) = torch.autograd.grad(value, variable, retain_graph=True)
                else:
                    with torch.no_grad():
                        logits = forward_logits(self.model, adv, run.precision)
                        _, pred = self._evaluate(logits, adv, run, t)
                view_grad = self._mean_input_gradient(itertools.chain([first], views), run, t)
                (grad,) = torch.autograd.grad(adv, variable, view_grad)
                grad = self.merge_gradients(image_grad, grad)
            if run.progress is not None:
                run.progress(Progress(run.restart * self.steps + t + 1, total, "attack",
                                      f"loss {run.history['loss'][-1]:.4f}"))
            if self.early_stop and rule.may_stop(t) and self._fooled(pred, run.labels, run.goal):
                # Return the image that was just checked, not the next (unchecked) one.
                adv = adv.detach().clamp(0.0, 1.0)
                return adv, self.state_of(variable.detach(), x, adv, context).detach(), t + 1, True
            with torch.no_grad():
                variable = rule.update(variable.detach(), grad, logits.detach(), t)
        with torch.no_grad():
            if self.steps:
                variable = rule.final(variable)
            adv = self.render(x, variable, context, t)
            if self.steps == 0:  # one-shot attacks: score the output once (and check the class count)
                self._evaluate(forward_logits(self.model, adv, run.precision), adv, run, 0)
                if run.progress is not None:
                    run.progress(Progress(run.restart + 1, total, "attack", ""))
            adv = adv.clamp(0.0, 1.0)
            return adv, self.state_of(variable, x, adv, context).detach(), self.steps, False

    def _value(self, logits: torch.Tensor, adv: torch.Tensor, run: _Run, t: int) -> torch.Tensor:
        """The maximised objective: :meth:`objective` minus ``λ_ssim·``:meth:`perceptual_penalty` where weighted."""
        value = self.objective(logits, run.goal, run.images, adv, run.context, t)
        if self._ssim_weight:
            value = value - self._ssim_weight * self.perceptual_penalty(run.similarity, adv, run.context)
        return value

    def _mean_input_gradient(self, views: Iterable[torch.Tensor], run: _Run, t: int) -> torch.Tensor:
        """Mean over ``views`` of the objective's gradient with respect to each view, one pass at a time."""
        total = torch.zeros(())
        count = 0
        for view in views:
            view = view.detach().requires_grad_(True)
            logits = forward_logits(self.model, view, run.precision)
            (grad,) = torch.autograd.grad(self._value(logits, view, run, t), view)
            total = total + grad
            count += 1
        return total / count

    def _evaluate(self, logits: torch.Tensor, adv: torch.Tensor, run: _Run,
                  t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The objective at step ``t`` and the prediction; the step's loss, Dice and SSIM go to the history."""
        if not run.history["loss"]:
            self._check_classes(logits.shape[1], run.labels, run.goal)
        value = self._value(logits, adv, run, t)
        with torch.no_grad():
            pred = class_map(logits)
            run.history["loss"].append(float(value.detach()))
            run.dice = dice_per_sample(pred, run.labels, logits.shape[1]).to(pred.device)
            run.history["dice"].append(float(run.dice.mean()))
            run.history["ssim"].append(float(run.similarity(adv).detach()))
            run.history["restart"].append(run.restart)
        return value, pred

    # ------------------------------------------------------------------------------------------- helpers
    def _initial_from(self, init_state: torch.Tensor, images: torch.Tensor, context: Any,
                      generator: torch.Generator) -> torch.Tensor:
        expected = self.init_variable(images, context, generator)
        if isinstance(init_state, torch.Tensor):
            init_state = self.variable_from_state(init_state.detach().to(images.device), images, context)
        if not isinstance(init_state, torch.Tensor) or tuple(init_state.shape) != tuple(expected.shape):
            got = list(init_state.shape) if isinstance(init_state, torch.Tensor) else type(init_state).__name__
            raise ValueError(f"init_state must have shape {list(expected.shape)}, got {got}.")
        if not torch.isfinite(init_state).all():
            raise ValueError("init_state must be finite, got NaN or infinite values.")
        return init_state.detach().to(device=images.device, dtype=expected.dtype).clone()

    def _fooled(self, pred: torch.Tensor, labels: torch.Tensor, goal: torch.Tensor) -> bool:
        if self.targeted:
            return bool((pred == goal).all())
        return bool((pred != labels).all())

    def _keep_worst(
        self, adv: torch.Tensor, state: torch.Tensor, run: _Run,
        best: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per sample, keep the restart whose prediction has the lowest Dice vs labels (targeted: highest vs goal)."""
        with torch.no_grad():
            logits = forward_logits(self.model, adv, run.precision)
        reference = run.goal if self.targeted else run.labels
        score = dice_per_sample(class_map(logits), reference, logits.shape[1]).to(adv.device)
        if self.targeted:
            score = -score
        if best is None:
            return adv, state, score
        best_adv, best_state, best_score = best
        better = score < best_score

        def pick(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
            return torch.where(better.view(-1, *[1] * (new.dim() - 1)), new, old)

        return pick(adv, best_adv), pick(state, best_state), torch.minimum(score, best_score)

    def _check_inputs(self, images: Any, labels: Any, target_labels: Any) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 5 or not images.is_floating_point():
            got = f"shape {list(images.shape)} dtype {images.dtype}" if isinstance(images, torch.Tensor) \
                else type(images).__name__
            raise ValueError(f"images must be a 5-D float tensor [B, C, H, W, D], got {got}.")
        if not torch.isfinite(images).all():
            raise ValueError("images must be finite, got NaN or infinite voxels.")
        if not self.clip_input:
            lo, hi = float(images.min()), float(images.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"images must have values in [0, 1] (pass clip_input=True to clamp), got [{lo:g}, {hi:g}]."
                )
        self._check_label_map("labels", labels, images)
        if self.targeted and target_labels is None:
            raise ValueError("target_labels must be given when targeted=True, got None.")
        if target_labels is not None:
            if not self.targeted:
                raise ValueError("target_labels must be None unless targeted=True, got a tensor.")
            self._check_label_map("target_labels", target_labels, images)

    @staticmethod
    def _check_label_map(name: str, labels: Any, images: torch.Tensor) -> None:
        expected = [images.shape[0], 1, *images.shape[2:]]
        if not isinstance(labels, torch.Tensor) or list(labels.shape) != expected:
            got = list(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(
                f"{name} must have shape [B, 1, H, W, D] matching images {list(images.shape)}, got {got}."
            )
        if labels.is_floating_point() and not torch.equal(labels, labels.round()):
            raise ValueError(f"{name} must hold integer class indices, got non-integer values.")
        if labels.numel() and float(labels.min()) < 0:
            raise ValueError(f"{name} must have values >= 0, got {float(labels.min()):g}.")

    @staticmethod
    def _check_classes(num_classes: int, labels: torch.Tensor, goal: torch.Tensor) -> None:
        for name, tensor in (("labels", labels), ("target_labels", goal)):
            top = int(tensor.max())
            if top >= num_classes:
                raise ValueError(
                    f"{name} must have values in [0, {num_classes - 1}] (the model outputs {num_classes} "
                    f"classes), got {top}."
                )
