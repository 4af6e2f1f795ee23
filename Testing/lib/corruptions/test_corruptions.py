"""The corruption registry: each corruption against a direct computation of its artefact model at one severity,
the severity scales, geometry and dtype kept, seeding, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from SpectrumAttackLib import corruptions
from SpectrumAttackLib.corruptions.base import draw_seed
from SpectrumAttackLib.runtime import make_generator

SPACING = (1.5, 1.25, 2.0)
SEED = 7


def phantom(shape: tuple[int, ...] = (20, 18, 16)) -> torch.Tensor:
    """A smooth ball on a gradient, in [0, 1], ``[1, 1, H, W, D]`` float32."""
    grids = torch.meshgrid(*[torch.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = sum(g**2 for g in grids).sqrt()
    volume = 0.2 + 0.3 * (grids[0] + 1) / 2 + 0.5 * (radius < 0.6).float()
    return volume.clamp(0, 1)[None, None]


def corrupt(name: str, severity: int, x: torch.Tensor, **kwargs) -> torch.Tensor:
    return corruptions.create(name, severity, seed=SEED, **kwargs)(x, SPACING)


def shifted_fft(volume: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fftn(volume))


def inverse_fft(spectrum: np.ndarray) -> np.ndarray:
    return np.fft.ifftn(np.fft.ifftshift(spectrum)).real


def test_registry_has_ten_corruptions_with_five_increasing_levels():
    assert len(corruptions.available()) == 10
    for modality in corruptions.MODALITIES:
        for row in corruptions.severity_table(modality):
            values = row["values"]
            assert len(values) == 5 and row["unit"] and row["source"]
            keys = [v if isinstance(v, (int, float)) else max(v) for v in values]
            assert keys == sorted(keys) and len(set(keys)) == 5, row["name"]
    ct = {r["name"]: r for r in corruptions.severity_table("ct")}
    assert ct["gaussian-noise"]["unit"] == "HU" and ct["gaussian-noise"]["values"][0] == 10.0


def test_gaussian_noise_is_x_plus_sigma_times_seeded_normal_mr_and_ct_in_hu():
    x = phantom()
    seed = draw_seed(make_generator(SEED))
    torch.manual_seed(seed)
    noise = torch.randn(x.shape[-3:])
    assert torch.allclose(corrupt("gaussian-noise", 3, x)[0, 0], x[0, 0] + 0.04 * noise, atol=1e-6)
    # CT: 40 HU at severity 3, with a window of 425 HU per image unit.
    ct = corrupt("gaussian-noise", 3, x, modality="ct", hu_per_unit=425.0)
    assert torch.allclose(ct[0, 0], x[0, 0] + 40.0 / 425.0 * noise, atol=1e-6)


def test_rician_noise_is_the_magnitude_of_two_seeded_gaussian_channels():
    x = phantom()
    random = np.random.RandomState(draw_seed(make_generator(SEED)))
    random.rand()  # MONAI's draw of whether to apply the transform (prob = 1)
    n1 = random.normal(0.0, 0.06, x.shape[-3:]).astype(np.float32)
    n2 = random.normal(0.0, 0.06, x.shape[-3:]).astype(np.float32)
    expected = np.sqrt((x[0, 0].numpy() + n1) ** 2 + n2**2)
    np.testing.assert_allclose(corrupt("rician-noise", 4, x)[0, 0].numpy(), expected, atol=1e-6)


def test_blur_is_a_gaussian_filter_of_sigma_mm_over_the_spacing():
    x = phantom()
    expected = ndimage.gaussian_filter(x[0, 0].numpy(), np.array([1.5] * 3) / np.array(SPACING))
    np.testing.assert_allclose(corrupt("blur", 3, x)[0, 0].numpy(), expected, atol=1e-6)


def test_resolution_loss_thickens_the_slice_axis_only():
    x = phantom()
    in_plane = corrupt("resolution-loss", 1, x[..., :1].expand(-1, -1, -1, -1, 16).contiguous())
    assert torch.allclose(in_plane, x[..., :1].expand_as(in_plane), atol=1e-5)  # no change along H, W
    stripes = (torch.arange(16) % 2).float().expand(1, 1, 20, 18, 16).contiguous()
    thick = corrupt("resolution-loss", 1, stripes)  # factor 2: every other slice survives
    inner = thick[..., 2:-2]
    assert float(inner.max() - inner.min()) < 1e-5


def test_bias_field_is_exp_of_a_third_order_polynomial_with_seeded_coefficients():
    x = phantom()
    c = corruptions.create("bias-field", 2, seed=SEED)
    coefficients = c.coefficients(make_generator(SEED))
    assert len(coefficients) == 20 and max(abs(v) for v in coefficients) <= 0.2
    axes = [(np.arange(n) - n / 2 + 0.5) for n in x.shape[-3:]]
    X, Y, Z = np.meshgrid(*[a / a.max() for a in axes], indexing="ij")
    powers = [(i, j, k) for i in range(4) for j in range(4 - i) for k in range(4 - i - j)]
    log_field = sum(v * X**i * Y**j * Z**k for v, (i, j, k) in zip(coefficients, powers, strict=True))
    np.testing.assert_allclose(c(x, SPACING)[0, 0].numpy(), x[0, 0].numpy() * np.exp(log_field), rtol=1e-5)


def test_gamma_is_a_power():
    x = phantom()
    assert torch.allclose(corrupt("gamma", 3, x), x**2.0, atol=1e-6)


def test_gibbs_ringing_cuts_k_space_outside_a_sphere():
    x = phantom()
    shape = np.array(x.shape[-3:])
    spectrum = shifted_fft(x[0, 0].numpy().astype(np.float64))
    grid = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    inside = np.sqrt(sum(g**2 for g in grid)) <= (1 - 0.6) * shape.max() * np.sqrt(2) / 2
    expected = inverse_fft(spectrum * inside)
    np.testing.assert_allclose(corrupt("gibbs-ringing", 3, x)[0, 0].numpy(), expected, atol=1e-5)


def test_kspace_spike_adds_one_spike_of_r_times_the_largest_magnitude():
    x = phantom()
    position = corruptions.create("kspace-spike", 2, seed=SEED).positions(make_generator(SEED))
    spectrum = shifted_fft(x[0, 0].numpy().astype(np.float64))
    index = tuple(np.floor(position[0] * np.array(spectrum.shape)).astype(int))
    spectrum[index] += 0.1 * np.abs(spectrum).max()
    np.testing.assert_allclose(corrupt("kspace-spike", 2, x)[0, 0].numpy(), inverse_fft(spectrum), atol=1e-5)


def test_ghosting_scales_every_fourth_k_space_plane_of_the_drawn_axis():
    x = phantom((40, 36, 16))  # 2 % of 40 rounds to one restored plane pair... of 36 to one: exercised below
    axis = int(torch.randint(0, 2, (1,), generator=make_generator(SEED)))
    spectrum = shifted_fft(x[0, 0].numpy().astype(np.float64))
    n = spectrum.shape[axis]
    keep = int(np.round(0.02 * n))
    centre = [slice(None)] * 3
    centre[axis] = slice(n // 2 - keep // 2, n // 2 + keep // 2)
    restored = spectrum[tuple(centre)].copy()
    planes = [slice(None)] * 3
    planes[axis] = slice(None, None, 4)
    spectrum[tuple(planes)] *= 1 - 0.5
    spectrum[tuple(centre)] = restored
    np.testing.assert_allclose(corrupt("ghosting", 3, x)[0, 0].numpy(), inverse_fft(spectrum), atol=1e-5)


def test_motion_wraps_torchio_motion_with_draws_inside_the_severity_bounds():
    import torchio as tio

    x = phantom()
    c = corruptions.create("motion", 3, seed=SEED)
    degrees, translation, times = c.draws(make_generator(SEED))
    assert degrees.shape == translation.shape == (2, 3)
    assert np.abs(degrees).max() <= 4.0 and np.abs(translation).max() <= 4.0
    assert 0 < times[0] < times[1] < 1
    image = tio.ScalarImage(tensor=x[0].clone(), affine=np.diag([*SPACING, 1.0]))
    expected = tio.Motion(degrees=degrees, translation=translation, times=times, image_interpolation="linear")(image)
    np.testing.assert_allclose(c(x, SPACING)[0, 0].numpy(), expected.data[0].numpy(), atol=1e-6)
    assert float((c(x, SPACING) - x).abs().mean()) > 1e-3


@pytest.mark.parametrize("name", corruptions.available())
def test_geometry_dtype_and_input_kept_and_seeded(name):
    x = torch.cat([phantom(), phantom().flip(2)]).double()  # [2, 1, H, W, D] float64
    before = x.clone()
    rng = torch.get_rng_state()
    kwargs = {"modality": "ct", "hu_per_unit": 425.0}
    out = corruptions.create(name, 5, seed=3, **kwargs)(x, SPACING)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.equal(x, before)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is neither used nor moved
    assert torch.equal(out, corruptions.create(name, 5, seed=3, **kwargs)(x, SPACING))
    assert not torch.equal(out, x)
    assert corruptions.create(name, 5, seed=3, **kwargs)(x[0, 0], SPACING).shape == x.shape[-3:]


@pytest.mark.parametrize("name", ["gaussian-noise", "rician-noise", "bias-field", "kspace-spike", "motion"])
def test_another_seed_gives_another_draw(name):
    x = phantom()
    assert not torch.equal(corruptions.create(name, 3, seed=0)(x, SPACING),
                           corruptions.create(name, 3, seed=1)(x, SPACING))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: corruptions.create("snow", 1), "corruption must be one of 'gaussian-noise'"),
    (lambda: corruptions.create("blur", 0), "severity must be an integer in [1, 5], got 0."),
    (lambda: corruptions.create("blur", 6), "severity must be an integer in [1, 5], got 6."),
    (lambda: corruptions.create("blur", 1, seed=-1), "seed must be an integer in [0, inf], got -1."),
    (lambda: corruptions.create("blur", 1, modality="pet"), "modality must be one of 'mr', 'ct', got 'pet'."),
    (lambda: corruptions.create("gaussian-noise", 1, modality="ct"), "hu_per_unit must be a positive number"),
    (lambda: corruptions.create("blur", 1)(torch.zeros(2, 2), SPACING), "images must be a float tensor"),
    (lambda: corruptions.create("blur", 1)(torch.zeros(4, 4, 4), (1, 1)), "spacing_mm must be three"),
    (lambda: corruptions.create("blur", 1)(torch.full((4, 4, 4), float("nan")), SPACING), "images must be finite"),
])
def test_bad_arguments_give_one_clear_error(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
