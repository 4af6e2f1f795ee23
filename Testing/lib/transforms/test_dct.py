"""Orthonormal block DCT: agreement with SciPy, exact inverse, any block shape, fused-axis paths."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from SpectrumAttackLib.transforms import dct_matrix, dct_nd, idct_nd
from SpectrumAttackLib.transforms.dct import KRON_MAX, _fused_axes

# (shape, ndim): cubic 3D blocks, non-cubic, 2D blocks of slices, sizes that fuse and sizes that do not.
CASES = [
    ((2, 1, 27, 8, 8, 8), 3),
    ((1, 1, 8, 16, 16, 16), 3),
    ((1, 1, 2, 32, 32, 32), 3),
    ((3, 4, 8, 16, 4), 3),
    ((2, 5, 4, 4, 4), 3),
    ((2, 1, 16, 9, 8, 8), 2),
    ((1, 1, 16, 4, 32, 32), 2),
    ((4, 3, 5, 7), 2),
    ((6, 11), 1),
]


@pytest.mark.parametrize(("shape", "ndim"), CASES)
def test_dct_equals_scipy_dctn_ortho(shape, ndim):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=tuple(range(-ndim, 0)))
    np.testing.assert_allclose(dct_nd(x, ndim).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize(("shape", "ndim"), CASES)
def test_round_trip_float32_within_1e5(shape, ndim):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    coefs = dct_nd(x, ndim)
    assert coefs.dtype == torch.float32 and coefs.shape == x.shape
    assert (idct_nd(coefs, ndim) - x).abs().max() <= 1e-5


def test_energy_preserved_and_dc_is_scaled_mean():
    x = torch.rand(3, 8, 16, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    coefs = dct_nd(x, 3)
    torch.testing.assert_close(coefs.pow(2).sum((-3, -2, -1)), x.pow(2).sum((-3, -2, -1)))
    torch.testing.assert_close(coefs[..., 0, 0, 0], x.mean((-3, -2, -1)) * (8 * 16 * 4) ** 0.5)


def test_dct_matrix_is_orthonormal_and_a_copy():
    m = dct_matrix(8, torch.float64)
    torch.testing.assert_close(m @ m.t(), torch.eye(8, dtype=torch.float64))
    m.zero_()  # must not corrupt the cache
    assert dct_matrix(8, torch.float64).abs().sum() > 0


def test_fused_axes_groups_small_trailing_axes():
    assert _fused_axes((8, 8, 8)) == [(8,), (8, 8)]
    assert _fused_axes((4, 4, 4)) == [(4, 4, 4)]
    assert _fused_axes((32, 32, 32)) == [(32,), (32,), (32,)]
    assert all(np.prod(g) <= KRON_MAX or len(g) == 1 for g in _fused_axes((16, 8, 2, 32)))


def test_gradient_flows_through_inverse():
    coefs = torch.randn(2, 4, 8, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: idct_nd(c, 3), (coefs,))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="ndim"):
        dct_nd(torch.zeros(4, 4), 3)
    with pytest.raises(ValueError, match="x must be a floating-point"):
        dct_nd(torch.zeros(4, 4, dtype=torch.long), 2)
