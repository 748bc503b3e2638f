"""The root's place in the crop camera, solved in closed form from the input 2D pose (model.camera=anchored).

The crop is cut around the detected joints, so a whole person and a head-and-shoulders close-up fill it alike: one
learnt depth cannot fit both, and a network that starts from one depth keeps drawing a small whole body into an
upper-body crop (measured: the projected size of such people 0.38 of the truth after training, against 0.91 for
whole people). The anchor is the weak-perspective camera that lays the predicted body's joints onto the input 2D
joints that count: the scale s (pixels per metre) the ratio of their spreads, the shift by least squares (as SPIN's
translation estimate); depth f / s.
"""
import torch


def anchor_camera(joints_2d, mask, joints_3d, focal, size, fallback_depth):
    """(depth [B], root pixel [B,2]) in the crop camera. joints_2d [B,J,2] input pose in crop px; mask [B,J] (1: the
    joint counts); joints_3d [B,J,3] the predicted body's joints relative to its root, camera axes (m); focal: one
    number (crop px); size: the crop's side (px). Fewer than two joints give no scale: fallback_depth and the crop
    centre."""
    x, X, m = joints_2d.float(), joints_3d[..., :2].float(), mask.float()
    n = m.sum(1, keepdim=True)                                                   # [B,1]
    mean = lambda a: (a * m[..., None]).sum(1) / n.clamp_min(1)                  # noqa: E731
    x0, X0 = mean(x), mean(X)
    dx, dX = (x - x0[:, None]) * m[..., None], (X - X0[:, None]) * m[..., None]
    spread = dX.pow(2).sum((1, 2))
    known = (n[:, 0] >= 2) & (spread > 1e-8)
    # the spreads' ratio, not the least-squares slope: a body predicted turned from the person's way would shrink
    # the slope towards 0 (a tiny, far body) where the spread still has the person's size
    s = (dx.pow(2).sum((1, 2)) / spread.clamp_min(1e-8)).clamp_min(1e-8).sqrt()   # finite gradients at 0
    s = torch.where(known, s, torch.full_like(s, focal / fallback_depth))
    # a crop holds between a face (~0.3 m across) and a body lying across it (~3 m): keep the guess in that range
    s = s.clamp(size / 3.0, size / 0.3)
    root = torch.where(known[:, None], x0 - s[:, None] * X0, torch.full_like(x0, size / 2))
    return focal / s, root
