import math

import numpy as np
import pytest
import torch

from common.geometry.transforms import (axis_angle_to_matrix, cam2pixel, matrix_to_axis_angle, matrix_to_rot6d,
                                     pixel2cam, procrustes_align, procrustes_align_np, project_points,
                                     rot6d_to_axis_angle, rot6d_to_matrix, world2cam)


def rodrigues64(aa):
    """Independent float64 reference: R = I + sin(t) K + (1 - cos(t)) K^2."""
    aa = np.asarray(aa, np.float64)
    t = np.linalg.norm(aa)
    if t == 0:
        return np.eye(3)
    k = aa / t
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * K @ K


def random_axis_angle(n, max_angle, gen, dtype=torch.float64):
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen, dtype=dtype), dim=-1)
    return axis * torch.rand(n, 1, generator=gen, dtype=dtype) * max_angle


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_axis_angle_to_matrix_matches_rodrigues(gen):
    aa = random_axis_angle(50, math.pi, gen)
    R = axis_angle_to_matrix(aa)
    ref = np.stack([rodrigues64(a) for a in aa.numpy()])
    np.testing.assert_allclose(R.numpy(), ref, atol=1e-12)


def test_axis_angle_90_about_z():
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(R, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(matrix_to_axis_angle(expected), torch.tensor([0.0, 0.0, math.pi / 2]))


def test_round_trip_random(gen):
    aa = random_axis_angle(200, math.pi - 1e-3, gen)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(aa)), aa, atol=1e-10, rtol=0)
    aa32 = aa.float()
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(aa32)), aa32, atol=2e-5, rtol=0)


def test_batched_leading_dims(gen):
    aa = random_axis_angle(24, 2.0, gen).reshape(2, 4, 3, 3)
    R = axis_angle_to_matrix(aa)
    assert R.shape == (2, 4, 3, 3, 3)
    assert matrix_to_axis_angle(R).shape == aa.shape
    torch.testing.assert_close(R[1, 2, 0], axis_angle_to_matrix(aa[1, 2, 0]))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_angle_zero_and_tiny(dtype):
    aa = torch.tensor([[0.0, 0.0, 0.0], [1e-9, 0, 0], [0, 3e-5, -2e-5], [1e-3, 0, 0]], dtype=dtype,
                      requires_grad=True)
    R = axis_angle_to_matrix(aa)
    ref = np.stack([rodrigues64(a) for a in aa.detach().double().numpy()])
    np.testing.assert_allclose(R.detach().double().numpy(), ref, atol=1e-7 if dtype == torch.float32 else 1e-14)
    R.sum().backward()
    assert torch.isfinite(aa.grad).all()
    # d/da of sum(R) at 0 is the derivative of sum([a]_x) = 0 for every component.
    assert torch.allclose(aa.grad[0], torch.zeros(3, dtype=dtype))

    eye = torch.eye(3, dtype=dtype).repeat(2, 1, 1).requires_grad_()
    back = matrix_to_axis_angle(eye)
    assert torch.equal(back.detach(), torch.zeros(2, 3, dtype=dtype))
    (back * torch.tensor([1.0, 2.0, 3.0], dtype=dtype)).sum().backward()
    assert torch.isfinite(eye.grad).all()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_angle_near_pi_no_nan(gen, dtype):
    axes = torch.nn.functional.normalize(torch.randn(64, 3, generator=gen, dtype=torch.float64), dim=-1)
    axes = torch.cat([axes, torch.eye(3, dtype=torch.float64)])  # axis-aligned: exact zeros in R
    for angle in (math.pi - 1e-3, math.pi - 1e-6, math.pi):
        aa = axes * angle
        R = torch.from_numpy(np.stack([rodrigues64(a) for a in aa.numpy()])).to(dtype).requires_grad_()
        back = matrix_to_axis_angle(R)
        assert torch.isfinite(back).all()
        (back * torch.randn(back.shape, generator=gen, dtype=dtype)).sum().backward()
        assert torch.isfinite(R.grad).all()
        # At pi the vector is defined up to sign; compare the rotations, and the angle.
        R_back = torch.from_numpy(np.stack([rodrigues64(a) for a in back.detach().double().numpy()]))
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(R_back, R.detach().double(), atol=tol, rtol=0)
        torch.testing.assert_close(back.detach().double().norm(dim=-1),
                                   torch.full((len(aa),), angle, dtype=torch.float64), atol=tol * 10, rtol=0)
    # The exact half-turn about x (a matrix with exact 0/-1 entries).
    half_turn = torch.tensor([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]], dtype=dtype)
    torch.testing.assert_close(matrix_to_axis_angle(half_turn).abs(), torch.tensor([math.pi, 0, 0], dtype=dtype))
    aa = torch.tensor([math.pi, 0.0, 0.0], dtype=dtype, requires_grad=True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()


def test_rot6d_identity():
    x = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])  # columns a1 = e_x, a2 = e_y in the [3,2] view
    torch.testing.assert_close(rot6d_to_matrix(x), torch.eye(3))
    torch.testing.assert_close(rot6d_to_axis_angle(x), torch.zeros(3))


def test_rot6d_random_is_rotation_and_gram_schmidt(gen):
    x = torch.randn(100, 6, generator=gen, dtype=torch.float64)
    R = rot6d_to_matrix(x)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand(100, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(100, dtype=torch.float64))
    a1, a2 = x[:, 0::2], x[:, 1::2]
    # Column 0 is along a1, column 1 lies in span(a1, a2) on a2's side.
    torch.testing.assert_close(R[:, :, 0], a1 / a1.norm(dim=-1, keepdim=True))
    assert ((R[:, :, 1] * a2).sum(-1) > 0).all()
    torch.testing.assert_close(torch.linalg.det(torch.stack([a1, a2, R[:, :, 1]], -1)),
                               torch.zeros(100, dtype=torch.float64), atol=1e-10, rtol=0)


def test_rot6d_round_trips(gen):
    R = axis_angle_to_matrix(random_axis_angle(50, math.pi, gen))
    six = matrix_to_rot6d(R)
    torch.testing.assert_close(rot6d_to_matrix(six), R)
    torch.testing.assert_close(matrix_to_rot6d(rot6d_to_matrix(six)), six)
    # Layout: (R00, R01, R10, R11, R20, R21).
    torch.testing.assert_close(six[0], R[0, :, :2].flatten())
    torch.testing.assert_close(rot6d_to_axis_angle(six), matrix_to_axis_angle(R))


def test_project_points_hand_computed():
    p = torch.tensor([[[1.0, 2.0, 4.0], [-2.0, 0.5, 2.0]]], dtype=torch.float64)
    out = project_points(p, (500.0, 600.0), (100.0, 50.0), eps=0.0)
    torch.testing.assert_close(out, torch.tensor([[[225.0, 350.0], [-400.0, 200.0]]], dtype=torch.float64))
    out = project_points(p, torch.tensor([500.0, 600.0]), torch.tensor([100.0, 50.0]))
    torch.testing.assert_close(out[0, 0], torch.tensor([1 / 4.0001 * 500 + 100, 2 / 4.0001 * 600 + 50],
                                                       dtype=torch.float64))
    # One camera per sample.
    pts = p.repeat(2, 1, 1)
    out = project_points(pts, torch.tensor([[500.0, 600.0], [1000.0, 1200.0]]), torch.zeros(2, 2), eps=0.0)
    torch.testing.assert_close(out[1, 0], torch.tensor([250.0, 600.0], dtype=torch.float64))


def test_cam_pixel_world():
    cam = np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 2.0]])
    pix = cam2pixel(cam, (500.0, 600.0), (100.0, 50.0))
    np.testing.assert_allclose(pix, [[225.0, 350.0, 4.0], [100.0, -250.0, 2.0]])
    np.testing.assert_allclose(pixel2cam(pix, (500.0, 600.0), (100.0, 50.0)), cam)
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t = np.array([10.0, 20.0, 30.0])
    np.testing.assert_allclose(world2cam(np.array([[1.0, 2.0, 3.0]]), R, t), [[8.0, 21.0, 33.0]])
    np.testing.assert_allclose(world2cam(np.array([[1.0, 2.0, 3.0]]), R, t[:, None]), [[8.0, 21.0, 33.0]])
    out = world2cam(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor(R, dtype=torch.float32), torch.tensor(t).float())
    torch.testing.assert_close(out, torch.tensor([[8.0, 21.0, 33.0]]))


@pytest.mark.parametrize('batch', [1, 2, 5])
def test_procrustes_recovers_similarity(gen, batch):
    gt = torch.randn(batch, 14, 3, generator=gen, dtype=torch.float64)
    R = axis_angle_to_matrix(random_axis_angle(batch, math.pi, gen))
    s = 0.5 + torch.rand(batch, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(batch, 3, generator=gen, dtype=torch.float64)
    pred = s[:, None, None] * gt @ R.transpose(-1, -2) + t[:, None]
    aligned, scale, R_hat, t_hat = procrustes_align(pred, gt, return_transform=True)
    assert aligned.shape == gt.shape and scale.shape == (batch,) and R_hat.shape == (batch, 3, 3)
    torch.testing.assert_close(aligned, gt, atol=1e-10, rtol=0)
    torch.testing.assert_close(scale, 1 / s)
    torch.testing.assert_close(R_hat, R.transpose(-1, -2))
    # float32 and numpy paths agree.
    torch.testing.assert_close(procrustes_align(pred.float(), gt.float()), gt.float(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(procrustes_align_np(pred.numpy(), gt.numpy()), gt.numpy(), atol=1e-10)
    np.testing.assert_allclose(procrustes_align(pred.numpy(), gt.numpy()), gt.numpy(), atol=1e-10)


def test_procrustes_unbatched(gen):
    gt = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(procrustes_align(2 * gt + 1, gt), gt)


def test_procrustes_never_reflects():
    # Box corners with distinct per-axis spreads, mirrored in x: the best orthogonal fit is the mirror,
    # the best proper rotation is a half-turn about y (undo x, flip the smallest-spread axis z).
    gt = np.array([[x, y, z] for x in (-1.5, 1.5) for y in (-1.0, 1.0) for z in (-0.5, 0.5)])
    pred = gt * np.array([-1.0, 1.0, 1.0])
    aligned, scale, R, t = procrustes_align_np(pred, gt, return_transform=True)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R, np.diag([-1.0, 1.0, -1.0]), atol=1e-12)
    # trace(S D) / var = (2.25 + 1 - 0.25) / (2.25 + 1 + 0.25)
    assert scale == pytest.approx(6 / 7)
    np.testing.assert_allclose(t, 0, atol=1e-12)
    np.testing.assert_allclose(aligned, gt * np.array([6 / 7, 6 / 7, -6 / 7]), atol=1e-12)
