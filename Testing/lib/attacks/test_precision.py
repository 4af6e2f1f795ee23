"""The precision of the model passes: resolution on this machine, refusals, fp32 outside the model, agreement."""

from __future__ import annotations

import platform
import re
import warnings
from pathlib import Path

import pytest
import torch
from attack_helpers import make_unet, random_batch

from SpectrumAttackLib import attacks
from SpectrumAttackLib.attacks.losses import dice_ce_loss
from SpectrumAttackLib.inference.sliding import SlidingWindowModel, predict_logits
from SpectrumAttackLib.precision import PRECISIONS, check_precision, cpu_bf16_features, resolve_precision


def _kernel_bf16_flags() -> set[str]:
    """The native-bf16 flags the Linux kernel lists for this CPU (read here independently of the engine)."""
    text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.MULTILINE).group(1).split())
    return flags & {"amx_bf16", "avx512_bf16"}


def test_choices_and_case() -> None:
    assert PRECISIONS == ("auto", "fp32", "bf16", "fp16")
    assert check_precision("BF16") == "bf16" and check_precision(" fp32 ") == "fp32"


@pytest.mark.parametrize("value", ["fp64", "half", "", None, 16])
def test_unknown_values_are_refused_naming_the_parameter(value) -> None:
    with pytest.raises(ValueError, match=r"^precision must be one of 'auto', 'fp32', 'bf16', 'fp16', got "):
        check_precision(value)
    with pytest.raises(ValueError, match=r"^precision must be one of"):
        attacks.create("pgd", make_unet(), precision=value)


@pytest.mark.skipif(platform.system() != "Linux" or platform.machine() != "x86_64", reason="reads Linux x86 flags")
def test_auto_on_this_cpu_follows_its_bf16_features() -> None:
    flags = _kernel_bf16_flags()
    assert set(cpu_bf16_features()) == flags
    resolved = resolve_precision("auto", "cpu")
    assert resolved.name == ("bf16" if flags else "fp32")
    assert resolved.as_record() == {"precision": "auto", "precision_used": resolved.name}
    assert resolved.dtype == (torch.bfloat16 if flags else torch.float32)


def test_fp16_is_refused_on_the_cpu() -> None:
    with pytest.raises(ValueError, match=r"^precision must be 'auto', 'fp32' or 'bf16' on cpu .*got 'fp16'"):
        resolve_precision("fp16", "cpu")
    images, labels = random_batch(1)
    attack = attacks.create("pgd", make_unet(), steps=1, precision="fp16")  # accepted: the device decides at call
    with pytest.raises(ValueError, match="fp16 runs on CUDA GPUs only"):
        attack(images, labels)


def test_a_resolved_precision_is_bound_to_its_device_type() -> None:
    resolved = resolve_precision("fp32", "cpu")
    assert resolve_precision(resolved, torch.device("cpu")) is resolved
    with pytest.raises(ValueError, match="precision must be resolved for the model's device"):
        resolve_precision(resolved, "meta")


def test_fp32_switches_off_a_surrounding_autocast() -> None:
    model = make_unet().eval()
    images, _ = random_batch(1)
    with torch.no_grad():
        plain = model(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = predict_logits(model, images, roi=16, precision="fp32")
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, plain, rtol=0, atol=0)


def test_sliding_window_logits_are_float32_under_bf16() -> None:
    model = make_unet().eval()
    images, _ = random_batch(1, size=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 asked for on a CPU without it: emulated, and said so
        logits = predict_logits(model, images, roi=16, overlap=0.5, precision="bf16")
    reference = predict_logits(model, images, roi=16, overlap=0.5, precision="fp32")
    assert logits.dtype == torch.float32
    assert (logits.argmax(1) == reference.argmax(1)).float().mean() > 0.95
    wrapped = SlidingWindowModel(model, roi=16, overlap=0.5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        blended = wrapped(images)  # as inside an attack's bf16 step: windows cast back before blending
    assert blended.dtype == torch.float32
    torch.testing.assert_close(blended, logits)


def test_only_the_model_runs_in_bf16_inside_a_real_sa2_step() -> None:
    """The block DCT (render), the loss, SSIM and the variable stay float32; the model's layers run in bf16."""
    model = make_unet()
    images, labels = random_batch(1)
    seen: dict[str, list] = {"conv": [], "loss": [], "render": [], "ssim": []}

    dice_ce = dice_ce_loss()

    def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        seen["loss"].append((logits.dtype, torch.is_autocast_enabled("cpu")))
        return dice_ce(logits, target)

    attack = attacks.create("saa", model, loss_fn, steps=2, block_size=(8, 8, 8), use_ssim_loss=True,
                            lambda_ssim=0.75, precision="bf16")
    render, penalty = attack.render, attack.perceptual_penalty

    def spy_render(x, variable, context, t):
        out = render(x, variable, context, t)
        seen["render"].append((variable.dtype, out.dtype, torch.is_autocast_enabled("cpu")))
        return out

    def spy_penalty(similarity, adversarial, context):
        out = penalty(similarity, adversarial, context)
        seen["ssim"].append((adversarial.dtype, out.dtype, torch.is_autocast_enabled("cpu")))
        return out

    attack.render, attack.perceptual_penalty = spy_render, spy_penalty
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv3d))
    hook = first_conv.register_forward_hook(lambda m, i, o: seen["conv"].append(o.dtype))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = attack(images, labels)
    finally:
        hook.remove()
    assert set(seen["conv"]) == {torch.bfloat16}
    assert set(seen["loss"]) == {(torch.float32, False)}
    assert set(seen["render"]) == {(torch.float32, torch.float32, False)}
    assert set(seen["ssim"]) == {(torch.float32, torch.float32, False)}
    assert result.state.dtype == torch.float32 and result.adversarial.dtype == torch.float32
    assert result.config["precision"] == "bf16" and result.config["precision_used"] == "bf16"


def test_short_sa2_agrees_between_bf16_and_fp32(fitted_net) -> None:
    """Same seed, the seed README's SA² setting at tiny size: Dice, flip rate and SSIM agree within 0.02."""
    model, images, clean = fitted_net.model, fitted_net.images, fitted_net.clean_pred
    params = {"steps": 5, "rho": 0.4, "block_size": (8, 8, 8), "lambda_dice": 0.2, "use_ssim_loss": True,
              "lambda_ssim": 0.75, "seed": 3}
    outcome = {}
    for precision in ("fp32", "bf16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = attacks.create("saa", model, precision=precision, **params)(images, clean)
        with torch.no_grad():
            pred = model(result.adversarial).argmax(1, keepdim=True)
        outcome[precision] = (result.history["dice"][-1], float((pred != clean).float().mean()),
                              result.history["ssim"][-1])
    fp32, bf16 = outcome["fp32"], outcome["bf16"]
    assert fp32[1] > 0.01  # the attack does something, so agreement is not trivial
    for a, b in zip(fp32, bf16, strict=True):
        assert abs(a - b) < 0.02, outcome
