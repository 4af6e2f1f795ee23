"""Momentum transfer attacks: MI-FGSM and VMI-FGSM, L∞ with ε on the 0–255 scale.

MI-FGSM (Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018, arXiv:1710.06081): from the clean
image, ``g ← μ·g + ∇J(x_t)/‖∇J(x_t)‖₁`` and ``x_{t+1} = clip_ε(x_t + α·sign(g))`` with ``α = ε/T`` over ``T`` steps;
published μ = 1.0. VMI-FGSM (Wang & He, "Enhancing the Transferability of Adversarial Attacks through Variance
Tuning", CVPR 2021, arXiv:2103.15571) adds the variance of the previous step to the gradient:
``g ← μ·g + (∇J(x_t) + v_t)/‖∇J(x_t) + v_t‖₁`` and ``v_{t+1} = (1/N)·Σᵢ ∇J(x_t + rᵢ) − ∇J(x_t)``, ``rᵢ ~ U(−β·ε, β·ε)``;
published N = 20, β = 1.5. Malik et al. (BMVC 2024) use both for black-box transfer between volumetric models.

The optimised variable carries the perturbation δ and the attack's memory (the momentum g; for VMI also v) stacked
along the channel axis, so the shared loop (:mod:`SpectrumAttackLib.attacks.base`) runs them unchanged; the L1 norm
is taken per sample as the mean absolute value (the same sign, any constant factor cancels in the sign step).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from SpectrumAttackLib.attacks.base import Attack
from SpectrumAttackLib.attacks.losses import LossFn
from SpectrumAttackLib.checks import check_int, check_range

__all__ = ["MIFGSM", "VMIFGSM"]


def _l1_normalised(grad: torch.Tensor) -> torch.Tensor:
    """``grad`` divided by its mean absolute value per sample (``[B, ...]``)."""
    scale = grad.abs().flatten(1).mean(1).clamp_min(1e-12)
    return grad / scale.view(-1, *[1] * (grad.dim() - 1))


class MIFGSM(Attack):
    """MI-FGSM with an L∞ budget.

    Args:
        model, loss_fn, steps, seed, targeted, restarts, early_stop, clip_input, precision: see :class:`Attack`.
        eps: L∞ budget on the 0–255 scale (4 means 4/255 in [0, 1] units); 0 ≤ eps ≤ 255. Default 4. The step is
            ``α = eps/255/steps`` (the paper's ε/T).
        decay: decay factor μ of the accumulated gradient (the paper's momentum), ≥ 0 (0: I-FGSM with ε/T steps).
            Default 1.0.

    Shape:
        images ``[B, C, H, W, D]``; ``result.state`` = ``δ = adversarial − images``, same shape (``init_state`` too;
        the momentum then starts at 0).

    Example:
        >>> result = MIFGSM(model, eps=8, steps=10)(images, labels)
    """

    name = "mi-fgsm"
    paper = "Dong et al., Boosting Adversarial Attacks with Momentum, CVPR 2018"
    #: memory tensors stacked after δ on the channel axis (the momentum g).
    _memory = 1

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *, eps: float = 4.0,
                 decay: float = 1.0, **kwargs: Any) -> None:
        super().__init__(model, loss_fn, **kwargs)
        self.eps = check_range("eps", eps, 0.0, 255.0, hint="0–255 scale; 4 means 4/255")
        self.decay = check_range("decay", decay, 0.0, None)
        self._step_size = self.radius / self.steps

    @property
    def random_init(self) -> bool:
        return False

    @property
    def radius(self) -> float:
        """The budget in [0, 1] intensity units."""
        return self.eps / 255.0

    def init_variable(self, images: torch.Tensor, context: Any, generator: torch.Generator) -> torch.Tensor:
        return torch.zeros_like(images).repeat(1, 1 + self._memory, *[1] * (images.dim() - 2))

    def variable_from_state(self, state: torch.Tensor, images: torch.Tensor, context: Any) -> torch.Tensor:
        if tuple(state.shape) != tuple(images.shape):
            raise ValueError(f"init_state must have shape {list(images.shape)} (δ), got {list(state.shape)}.")
        return torch.cat([state, *[torch.zeros_like(state)] * self._memory], dim=1)

    def render(self, images: torch.Tensor, variable: torch.Tensor, context: Any, t: int) -> torch.Tensor:
        return images + variable[:, : images.shape[1]]

    def project(self, variable: torch.Tensor, images: torch.Tensor, context: Any) -> torch.Tensor:
        channels = images.shape[1]
        delta = variable[:, :channels].clamp(-self.radius, self.radius)
        delta = (images + delta).clamp(0.0, 1.0) - images
        return torch.cat([delta, variable[:, channels:]], dim=1)

    def _momentum_step(self, delta: torch.Tensor, momentum: torch.Tensor,
                       direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        momentum = self.decay * momentum + _l1_normalised(direction)
        return delta + self._step_size * momentum.sign(), momentum

    def step(self, variable: torch.Tensor, grad: torch.Tensor, t: int) -> torch.Tensor:
        delta, momentum = variable.chunk(2, dim=1)
        delta, momentum = self._momentum_step(delta, momentum, grad.chunk(2, dim=1)[0])
        return torch.cat([delta, momentum], dim=1)

    def state_of(self, variable: torch.Tensor, images: torch.Tensor, adversarial: torch.Tensor,
                 context: Any) -> torch.Tensor:
        return adversarial - images


class VMIFGSM(MIFGSM):
    """VMI-FGSM: MI-FGSM whose gradient is tuned by the variance of the previous step's neighbourhood.

    Args:
        model, loss_fn, steps, seed, ..., eps, decay: see :class:`MIFGSM`.
        vmi_samples: neighbours N sampled per step, ≥ 1. Default 20.
        vmi_beta: neighbourhood radius β in units of ε (neighbours ``x + U(−β·ε, β·ε)``), > 0. Default 1.5.

    Each step costs ``1 + vmi_samples`` forward and backward passes; the neighbours are drawn from the call's
    generator (the seed).
    """

    name = "vmi-fgsm"
    paper = "Wang & He, Enhancing the Transferability of Adversarial Attacks through Variance Tuning, CVPR 2021"
    image_gradient_with_views = True
    #: the momentum g and the variance v.
    _memory = 2

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn | None = None, *, vmi_samples: int = 20,
                 vmi_beta: float = 1.5, **kwargs: Any) -> None:
        super().__init__(model, loss_fn, **kwargs)
        self.vmi_samples = check_int("vmi_samples", vmi_samples, 1)
        self.vmi_beta = check_range("vmi_beta", vmi_beta, 0.0, None, low_inclusive=False)

    @property
    def random_init(self) -> bool:
        return True  # the neighbours are random

    def views(self, adversarial: torch.Tensor, context: Any, generator: torch.Generator) -> Iterator[torch.Tensor]:
        reach = self.vmi_beta * self.radius
        for _ in range(self.vmi_samples):
            noise = torch.empty_like(adversarial).uniform_(-reach, reach, generator=generator)
            yield adversarial + noise

    def merge_gradients(self, image_grad: torch.Tensor | None, views_grad: torch.Tensor) -> torch.Tensor:
        """``[∇J(x_t) | mean of the neighbours' gradients | 0]`` on the variable's channel layout."""
        channels = views_grad.shape[1] // 3
        return torch.cat([image_grad[:, :channels], views_grad[:, :channels],
                          torch.zeros_like(views_grad[:, :channels])], dim=1)

    def step(self, variable: torch.Tensor, grad: torch.Tensor, t: int) -> torch.Tensor:
        delta, momentum, variance = variable.chunk(3, dim=1)
        gradient, neighbours, _ = grad.chunk(3, dim=1)
        delta, momentum = self._momentum_step(delta, momentum, gradient + variance)
        return torch.cat([delta, momentum, neighbours - gradient], dim=1)
