"""Fitting SMPL to 2D keypoints (SMPLify / SPIN-style), from a network's prediction: the demo's --refine.

    pose, shape, root, info = fit_to_keypoints(body_model, pose, shape, root, keypoints, box_height, camera, opts)

Per person: the pose (root orientation and 21 body joints), the 10 shape coefficients and the root joint's position
in the camera frame are moved so that the mesh's projected COCO-17 joints meet the detector's keypoints, under
priors that keep the body plausible: the network's own body pose (an L2 pull), a Gaussian mixture pose prior learnt
from the synthetic pose generator (POSE_PRIOR_PATH, made by tool/make_data/fit_pose_prior.py), joint-angle limits on
knees and elbows (no hinge bends backwards), and an L2 shape prior. Joints the detector does not see are left to the
priors. The people of an image are one batch (independent problems, one optimiser); any device.

Two stages, as SMPLify: first the root's position and orientation alone (the camera), then everything. The data
term is Geman-McClure on the keypoint error in units of the person's box height, weighted by the detector's score
(keypoints at or below opts.conf_thr are ignored), so photographs of any size and people at any distance weigh
alike. opts: main/config.py RefineConfig (its fields are the only settings).
"""
import contextlib
from pathlib import Path

import numpy as np
import torch

from common.body.joint_sets import COCO17, SMPL30
from common.errors import UserError
from common.geometry.transforms import axis_angle_to_matrix, matrix_to_axis_angle, project_points

POSE_PRIOR_PATH = Path(__file__).with_name('pose_prior.npz')
PRIOR_DIMS = 63            # axis-angle of the 21 body joints after the root (pose[3:66]); the hands are never posed
COCO_IN_SMPL30 = [SMPL30.index(n) for n in COCO17.joints]
# (body pose index: 3 (joint - 1) + axis, sign): the components that must keep their sign
# (tool/make_data/synthetic/poses.py: knees x > 0; left elbow y < 0, right elbow y > 0)
HINGES = ((3 * 3, 1.0), (3 * 4, 1.0), (3 * 17 + 1, -1.0), (3 * 18 + 1, 1.0))


class PosePrior(torch.nn.Module):
    """Negative log-likelihood of a Gaussian mixture over pose[3:66] (axis-angle), minus its value at the best mode:
    0 for the likeliest pose, ~ half the squared Mahalanobis distance from there."""

    def __init__(self, path=POSE_PRIOR_PATH):
        super().__init__()
        try:
            with np.load(path, allow_pickle=False) as z:
                logw, means, covs = (np.asarray(z[k], np.float64) for k in ('log_weights', 'means', 'covariances'))
        except FileNotFoundError:
            raise UserError(f'the pose prior {path} is missing: python tool/make_data/fit_pose_prior.py '
                            f'makes it') from None
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f'cannot read the pose prior {path} ({e}): python tool/make_data/fit_pose_prior.py '
                            f'remakes it') from e
        k, d = means.shape
        if d != PRIOR_DIMS or covs.shape != (k, d, d) or logw.shape != (k,) or not np.isfinite(covs).all():
            raise UserError(f'{path} is not a pose prior over {PRIOR_DIMS} dims: '
                            f'python tool/make_data/fit_pose_prior.py remakes it')
        chol = np.linalg.cholesky(covs)
        inv_chol = np.linalg.inv(chol)                                     # z = L^-1 (x - mu)
        const = logw - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)  # log w - log det L (the 2 pi dropped)
        self.register_buffer('means', torch.from_numpy(means).float(), persistent=False)
        self.register_buffer('inv_chol', torch.from_numpy(inv_chol).float(), persistent=False)
        self.register_buffer('const', torch.from_numpy(const).float(), persistent=False)
        self.best = float(const.max())

    def forward(self, body_pose):
        """body_pose [B,>=63] (pose[3:]) -> [B]."""
        x = body_pose[:, :PRIOR_DIMS].float()
        z = torch.einsum('kij,bkj->bki', self.inv_chol, x[:, None] - self.means)   # [B,K,D]
        ll = torch.logsumexp(self.const - 0.5 * (z * z).sum(-1), dim=1)
        return self.best - ll


def joint_limit_penalty(body_pose):
    """body_pose [B,69] (pose[3:]) -> [B]: the squared angles (radians) by which knees and elbows bend the wrong
    way."""
    return sum(torch.relu(-sign * body_pose[:, i]) ** 2 for i, sign in HINGES)


def gmof(sq, sigma):
    """Geman-McClure of squared residuals: ~ sq for small ones, -> sigma^2 for outliers."""
    return sigma ** 2 * sq / (sigma ** 2 + sq)


class _Fit(torch.nn.Module):
    """The free parameters: body pose [B,69], shape [B,10], a rotation delta on the root's orientation (axis-angle,
    applied after the network's), the root's image position (offset from the principal point, in box heights) and
    its log depth: every step size means the same on any image, camera and person size."""

    def __init__(self, pose, shape, root, focal, box_height):
        super().__init__()
        self.R0 = axis_angle_to_matrix(pose[:, :3]).detach()
        self.body = torch.nn.Parameter(pose[:, 3:].clone())
        self.shape = torch.nn.Parameter(shape.clone())
        self.delta = torch.nn.Parameter(torch.zeros_like(pose[:, :3]))
        z = root[:, 2:].clamp(min=0.05)
        self.scale = (box_height / root.new_tensor(focal))            # [B,2]: box heights -> normalised coordinates
        self.uv = torch.nn.Parameter(root[:, :2] / z / self.scale)
        self.log_z = torch.nn.Parameter(torch.log(z))

    def rotation(self):
        return self.R0 @ axis_angle_to_matrix(self.delta)

    def root(self):
        z = torch.exp(self.log_z)
        return torch.cat([self.uv * self.scale * z, z], 1)

    def pose(self):
        return torch.cat([matrix_to_axis_angle(self.rotation()), self.body], 1)

    def forward(self, body_model):
        return posed(body_model, torch.cat([torch.zeros_like(self.delta), self.body], 1), self.shape, self.root(),
                     self.rotation())


def posed(body_model, pose, shape, root, rotation=None):
    """(vertices [B,V,3], joints [B,30,3]) in the camera frame of SMPL pose [B,72] and shape [B,10] with the root
    joint at root [B,3]. rotation [B,3,3]: the root's orientation, applied to a body posed with pose[:, :3] = 0 (SMPL
    turns the body about its root joint, whose rest position the orientation does not change; a matrix keeps the
    optimiser away from axis-angle's wrap at pi, where upright people are)."""
    verts, joints = body_model(pose, shape)
    r = joints[:, SMPL30.root_idx:SMPL30.root_idx + 1]
    if rotation is None:
        return verts - r + root[:, None], joints - r + root[:, None]
    return tuple((p - r) @ rotation.transpose(1, 2) + root[:, None] for p in (verts, joints))


def fit_to_keypoints(body_model, pose, shape, root, keypoints, box_height, camera, opts, prior=None):
    """Refine SMPL fits to COCO-17 keypoints. pose [B,72] axis-angle, shape [B,10], root [B,3] (the root joint in
    the camera frame, m), keypoints [B,17,3] (x, y, score; image px), box_height [B] (px), camera: the image's
    common.camera.Camera. Returns (pose, shape, root, info) detached, info: {'err_before', 'err_after'} [B], the
    score-weighted mean keypoint error in box heights. Runs on the device of body_model."""
    dev = body_model.joint_regressor.device
    as_t = (lambda x: torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32,
                                      device=dev))
    pose, shape, root, kp, h = (as_t(x) for x in (pose, shape, root, keypoints, box_height))
    prior = prior if prior is not None else pose_prior(dev)
    score = kp[..., 2]
    w = torch.where(score > opts.conf_thr, score, torch.zeros_like(score))
    h = h.clamp(min=1.0)[:, None]
    body0 = pose[:, 3:].clone()
    focal, princpt = camera.focal, camera.princpt
    fit = _Fit(pose, shape, root, focal, h).to(dev)

    def data_term(joints):
        uv = project_points(joints[:, COCO_IN_SMPL30], focal, princpt)
        sq = ((uv - kp[..., :2]) / h[..., None]).pow(2).sum(-1)
        return sq, (w * gmof(sq, opts.sigma)).sum(1)

    def loss(full):
        _, joints = fit(body_model)
        sq, data = data_term(joints)
        total = data
        if full:
            total = total + opts.w_net * (fit.body - body0).pow(2).sum(1) + opts.w_prior * prior(fit.body) + \
                opts.w_angle * joint_limit_penalty(fit.body) + \
                opts.w_shape * fit.shape.pow(2).sum(1)
        return total.sum(), (w * sq.sqrt()).sum(1) / w.sum(1).clamp(min=1e-6)

    with torch.no_grad():
        _, err_before = loss(False)
    stages = ((False, [fit.delta, fit.uv, fit.log_z], max(1, opts.iters // 2)),
              (True, list(fit.parameters()), opts.iters))
    with torch.enable_grad(), _one_cpu_thread(dev):
        for full, params, iters in stages:
            opt = torch.optim.Adam(params, lr=opts.lr)
            for _ in range(iters):
                opt.zero_grad(set_to_none=True)
                total, _ = loss(full)
                total.backward()
                opt.step()
    with torch.no_grad():
        _, err_after = loss(False)
        out = fit.pose(), fit.shape.detach().clone(), fit.root()
    return (*(t.detach() for t in out), {'err_before': err_before.cpu().numpy(), 'err_after': err_after.cpu().numpy()})


@contextlib.contextmanager
def _one_cpu_thread(device):
    """On a CPU, one intra-op thread: the fit is hundreds of tiny ops, where threads cost more in synchronisation
    than they give (measured on 2 busy cores: 4x faster with one)."""
    n = torch.get_num_threads()
    if device.type == 'cpu':
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


_priors = {}


def pose_prior(device='cpu'):
    """The shared PosePrior on a device (read once)."""
    key = str(torch.device(device))
    if key not in _priors:
        _priors[key] = PosePrior().to(device)
    return _priors[key]
