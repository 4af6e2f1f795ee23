"""Where adversarial images live: the attack-named sub-folder shared by ``attack`` (writes) and ``evaluate`` (reads).

As in the reference, adversarial images go into ``<save_adv_images_dir>/<attack sub-folder>/`` unless
``--no_sub_dir_adv_images`` is given. The sub-folder name is built from the attack name and its parameters, so
``evaluate`` given the same attack flags finds the folder ``attack`` wrote, e.g.
``saa_rho0.2_steps20_block32x32x32_ld0.01_ssim``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ADV_SUFFIX", "adv_image_name", "resolve_adv_dir", "sub_dir_name"]

#: file-name ending of an adversarial image written by ``spectrum-attack attack``.
ADV_SUFFIX = "_adv.nii.gz"

# (parameter, tag) in the order they appear in the folder name.
_TAGS: tuple[tuple[str, str], ...] = (
    ("eps", "eps"),
    ("alpha", "alpha"),
    ("std", "std"),
    ("rho", "rho"),
    ("q_max", "qmax"),
    ("q_min", "qmin"),
    ("steps", "steps"),
    ("block_size", "block"),
    ("lambda_dice", "ld"),
    ("num_spectrum_augs", "augs"),
    ("beta", "beta"),
    ("variant", "variant-"),
)


def _fmt(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join(_fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def sub_dir_name(attack_name: str, params: dict[str, Any]) -> str:
    """The attack-named sub-folder for ``attack_name`` with ``params`` (as from ``attack_params_from_args``).

    Only parameters the attack takes appear; the SSIM term adds ``_ssim`` (and ``_ls<λ>`` when λ_ssim ≠ 1), a
    frequency band other than ``all`` adds ``_band<name>``, more than one restart ``_restarts<n>`` and a seed
    other than 0 ``_seed<n>``.
    """
    parts = [attack_name]
    for key, tag in _TAGS:
        if key in params and params[key] is not None:
            parts.append(f"{tag}{_fmt(params[key])}")
    if params.get("use_ssim_loss"):
        parts.append("ssim")
        if params.get("lambda_ssim", 1) != 1:
            parts.append(f"ls{_fmt(float(params['lambda_ssim']))}")
    if params.get("freq_band", "all") != "all":
        parts.append(f"band{params['freq_band']}")
    if params.get("restarts", 1) > 1:
        parts.append(f"restarts{params['restarts']}")
    if params.get("seed", 0):
        parts.append(f"seed{params['seed']}")
    return "_".join(parts)


def resolve_adv_dir(root: str | Path, attack_name: str, params: dict[str, Any], no_sub_dir: bool) -> Path:
    """``root`` itself with ``no_sub_dir``, else ``root / sub_dir_name(attack_name, params)``."""
    root = Path(root)
    return root if no_sub_dir else root / sub_dir_name(attack_name, params)


def adv_image_name(case: str) -> str:
    """File name of the adversarial image of ``case`` (``img0001`` → ``img0001_adv.nii.gz``)."""
    return f"{case}{ADV_SUFFIX}"
