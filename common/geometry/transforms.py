"""Rotation conversions, camera projection and similarity Procrustes.

Torch functions are device-agnostic and batched over any leading dimensions. Rotation matrices act
on column vectors (x' = R x); axis-angle is the Rodrigues vector (unit axis times angle in radians);
quaternions are (w, x, y, z) as in kornia.
"""
import numpy as np
import torch
import torch.nn.functional as F
from kornia.geometry.conversions import quaternion_to_rotation_matrix

# Below this squared half-angle sine / squared angle, the exact formulas divide 0 by 0 (in forward or
# backward), so a Taylor expansion takes over; its truncation error there is < 1e-16.
_SMALL_SQ = 1e-8


# ----------------------------------------------------------------------------------------------------
# Rotations
# ----------------------------------------------------------------------------------------------------
def _safe_sqrt(x, small=0.0):
    """sqrt(x) where x > small, else 0; the guarded branch gets a finite gradient (a bare torch.where
    around sqrt(0) back-propagates 0 * inf = NaN)."""
    ok = x > small
    return torch.where(ok, torch.sqrt(torch.where(ok, x, torch.ones_like(x))), torch.zeros_like(x)), ok


def axis_angle_to_quaternion(aa):
    """[...,3] -> [...,4] (w,x,y,z), finite values and gradients everywhere, including angle 0.

    kornia's `axis_angle_to_quaternion` returns NaN gradients at exactly 0 (zero hand poses, rest
    poses), and its `axis_angle_to_rotation_matrix` has a fixed 1e-6 error from an epsilon in the axis
    normalisation, so the quaternion is built here and kornia converts it to a matrix.
    """
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta, big = _safe_sqrt(theta2, _SMALL_SQ)
    half = 0.5 * theta
    # sin(t/2)/t and cos(t/2), with their Taylor series near 0.
    k = torch.where(big, torch.sin(half) / torch.where(big, theta, torch.ones_like(theta)),
                    0.5 - theta2 / 48.0)
    w = torch.where(big, torch.cos(half), 1.0 - theta2 / 8.0)
    return torch.cat([w, aa * k], dim=-1)


def axis_angle_to_matrix(aa):
    """[...,3] -> [...,3,3]."""
    return quaternion_to_rotation_matrix(axis_angle_to_quaternion(aa))


def matrix_to_quaternion(R):
    """[...,3,3] -> unit quaternion [...,4] (w,x,y,z) with w >= 0.

    Same well-conditioned branch choice as kornia's `rotation_matrix_to_quaternion` (solve for the
    largest of |w|,|x|,|y|,|z|), but kornia evaluates the square roots of *all* branches, and for the
    unused ones the argument rounds below 0 near angle pi (common: an upright person in camera
    coordinates has a root rotation of ~pi about x), giving NaN gradients.
    """
    m = R.reshape(*R.shape[:-2], 9)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    # 4*w^2, 4*x^2, 4*y^2, 4*z^2 of the quaternion.
    q_sq = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                        1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
    q_abs, _ = _safe_sqrt(q_sq)  # 2*|q_i|
    # Row i: the quaternion times 4*q_i, derived from the diagonal term i and the off-diagonal sums.
    cand = torch.stack([
        torch.stack([q_sq[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1),
        torch.stack([m21 - m12, q_sq[..., 1], m10 + m01, m02 + m20], dim=-1),
        torch.stack([m02 - m20, m10 + m01, q_sq[..., 2], m12 + m21], dim=-1),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, q_sq[..., 3]], dim=-1),
    ], dim=-2)
    # The largest |q_i| is >= 1/2, so the chosen row divides by >= 2; the clamp only keeps the unused
    # rows finite.
    cand = cand / (2.0 * q_abs[..., None].clamp(min=0.1))
    best = F.one_hot(q_abs.argmax(dim=-1), num_classes=4).to(R.dtype)
    q = (cand * best[..., None]).sum(dim=-2)
    q = torch.where(q[..., :1] < 0, -q, q)
    return F.normalize(q, dim=-1)


def quaternion_to_axis_angle(q):
    """[...,4] (w,x,y,z) -> [...,3] with angle in [0, pi]; finite values and gradients at 0 and pi."""
    q = torch.where(q[..., :1] < 0, -q, q)  # q and -q are the same rotation; w >= 0 keeps angle <= pi
    w, v = q[..., :1], q[..., 1:]
    s2 = (v * v).sum(-1, keepdim=True)
    s, big = _safe_sqrt(s2, _SMALL_SQ)
    angle = 2.0 * torch.atan2(s, w)
    w_safe = torch.where(big, torch.ones_like(w), w).clamp(min=1e-12)  # w ~ 1 there for unit q
    # angle/s, and its Taylor series 2/w - 2 s^2 / (3 w^3) where s ~ 0 (then w ~ 1).
    k = torch.where(big, angle / torch.where(big, s, torch.ones_like(s)),
                    2.0 / w_safe - 2.0 * s2 / (3.0 * w_safe ** 3))
    return v * k


def matrix_to_axis_angle(R):
    """[...,3,3] -> [...,3], angle in [0, pi]; never NaN (values or gradients) for rotation matrices."""
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def rot6d_to_matrix(x):
    """6D rotation (3DCrowdNet / VPoser layout) [...,6] -> [...,3,3].

    x viewed as [...,3,2]: its columns a1, a2 are Gram-Schmidt orthonormalised into the first two
    columns of R; the third is their cross product (so det R = +1).
    """
    x = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = x[..., 0], x[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(R):
    """[...,3,3] -> [...,6]: the first two columns, interleaved per row (inverse of rot6d_to_matrix)."""
    return R[..., :, :2].reshape(*R.shape[:-2], 6)


def rot6d_to_axis_angle(x):
    """[...,6] -> [...,3]."""
    return matrix_to_axis_angle(rot6d_to_matrix(x))


# ----------------------------------------------------------------------------------------------------
# Cameras
# ----------------------------------------------------------------------------------------------------
def _per_point(v, like):
    """focal / princpt as tuple, [2] or [...,2] tensor -> broadcastable to [...,N,2]."""
    v = torch.as_tensor(v, dtype=like.dtype, device=like.device)
    return v[..., None, :]


def project_points(points, focal, princpt, eps=1e-4):
    """Pinhole projection [...,N,3] -> [...,N,2]: x = X/(Z+eps)*fx + cx (the 3DCrowdNet get_coord rule).

    focal, princpt: (fx,fy), (cx,cy) as tuples or tensors of shape [2], or [...,2] with the leading
    dims of points (one camera per sample).
    """
    z = points[..., 2:3] + eps
    return points[..., :2] / z * _per_point(focal, points) + _per_point(princpt, points)


def cam2pixel(cam_coord, f, c):
    """numpy camera coordinates [...,3] -> [...,3] (u, v, depth in the camera's units)."""
    x = cam_coord[..., 0] / cam_coord[..., 2] * f[0] + c[0]
    y = cam_coord[..., 1] / cam_coord[..., 2] * f[1] + c[1]
    return np.stack([x, y, cam_coord[..., 2]], axis=-1)


def pixel2cam(pixel_coord, f, c):
    """numpy (u, v, depth) [...,3] -> camera coordinates [...,3] (inverse of cam2pixel)."""
    z = pixel_coord[..., 2]
    x = (pixel_coord[..., 0] - c[0]) / f[0] * z
    y = (pixel_coord[..., 1] - c[1]) / f[1] * z
    return np.stack([x, y, z], axis=-1)


def world2cam(world_coord, R, t):
    """X_cam = R X_world + t for points [...,N,3] (numpy or torch); R [...,3,3], t [...,3] or [...,3,1]."""
    if t.shape[-2:] == (3, 1):
        t = t[..., 0]
    return world_coord @ R.swapaxes(-1, -2) + t[..., None, :]


# ----------------------------------------------------------------------------------------------------
# Similarity Procrustes
# ----------------------------------------------------------------------------------------------------
def _procrustes_torch(pred, gt):
    mu_p = pred.mean(dim=-2, keepdim=True)
    mu_g = gt.mean(dim=-2, keepdim=True)
    X, Y = pred - mu_p, gt - mu_g
    n = pred.shape[-2]
    var_p = (X * X).sum(dim=(-2, -1)) / n  # sum of the per-axis population variances
    H = X.transpose(-1, -2) @ Y / n
    U, S, Vh = torch.linalg.svd(H)
    V = Vh.transpose(-1, -2)
    # Reflection fix: if V U^T is improper, flip the last (smallest) singular direction.
    d = torch.where(torch.linalg.det(V @ U.transpose(-1, -2)) < 0, -1.0, 1.0).to(pred.dtype)
    D = torch.ones_like(S)
    D[..., -1] = d
    R = V @ (D[..., :, None] * U.transpose(-1, -2))
    # A degenerate prediction (all points equal) gets scale 0 rather than 0/0.
    scale = (S * D).sum(-1) / var_p.clamp(min=torch.finfo(pred.dtype).tiny)
    t = mu_g[..., 0, :] - scale[..., None] * (R @ mu_p[..., 0, :, None])[..., 0]
    aligned = scale[..., None, None] * (pred @ R.transpose(-1, -2)) + t[..., None, :]
    return aligned, scale, R, t


def procrustes_align(pred, gt, return_transform=False):
    """Align pred onto gt with the best similarity (scale, proper rotation, translation).

    pred, gt: [...,N,3] torch tensors or numpy arrays (numpy in -> numpy out, computed in float64).
    Returns the aligned pred, and with return_transform also (scale [...], R [...,3,3], t [...,3]) such
    that aligned = scale * R @ p + t. det R = +1 always, even when a reflection would fit better.
    """
    if pred.shape != gt.shape:
        raise ValueError(f'procrustes_align: pred {tuple(pred.shape)} and gt {tuple(gt.shape)} differ')
    is_np = isinstance(pred, np.ndarray)
    if is_np:
        pred, gt = torch.from_numpy(np.asarray(pred, np.float64)), torch.from_numpy(np.asarray(gt, np.float64))
    out = _procrustes_torch(pred, gt)
    if is_np:
        out = tuple(o.numpy() for o in out)
    return out if return_transform else out[0]


def procrustes_align_np(pred, gt, return_transform=False):
    """numpy wrapper of procrustes_align (float64)."""
    return procrustes_align(np.asarray(pred, np.float64), np.asarray(gt, np.float64), return_transform)
