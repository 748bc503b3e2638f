"""How well a mesh sits on its person in an image (common/metrics.py mesh_fit_2d) on constructed cases of known
answer, and the SMPLify-style refinement (common/body/fitting.py) on synthetic people whose ground truth is known."""
import math

import numpy as np
import pytest
import torch

from common.body.fitting import PosePrior, fit_to_keypoints, joint_limit_penalty, posed
from common.body.joint_sets import COCO17, SMPL30, map_joints
from common.body.smpl import get_body_model
from common.camera import Camera
from common.metrics import mesh_fit_2d, on_mask, pa_mpjpe, pool_fits
from main.config import load_config

F = 800.0


@pytest.fixture(scope='module')
def body():
    return get_body_model(procedural_vertices=800)


def project(joints, c):
    coco = map_joints(np.asarray(joints, np.float64), SMPL30, COCO17)
    return F * coco[..., :2] / coco[..., 2:] + np.asarray(c)


def upright_pose(batch=1):
    pose = torch.zeros(batch, 72)
    pose[:, 0] = math.pi                                    # upright, facing the camera
    pose[:, 3 * 16 + 2], pose[:, 3 * 17 + 2] = -0.6, 0.6   # arms a little away from the body
    return pose


def test_on_mask_is_the_distance_to_the_nearest_mask_pixel():
    mask = np.zeros((20, 30), bool)
    mask[10, 10] = True
    pts = [(13, 14), (10, 10), (-1, 10), (40, 5)]                # 5 px away (3-4-5), on it, outside the image twice
    assert on_mask(pts, mask, 5.0).tolist() == [True, True, False, False]
    assert on_mask(pts, mask, 4.9).tolist() == [False, True, False, False]
    assert on_mask(pts, np.zeros_like(mask), 100).tolist() == [False] * 4


def test_pooling_counts_every_keypoint_once():
    a = {'keypoints': 10, 'pck_hits': 9, 'err_sum': 0.5, 'on_mesh_hits': 8, 'height_ratio': 1.0}
    b = {'keypoints': 5, 'pck_hits': 0, 'err_sum': 2.5, 'on_mesh_hits': 1, 'height_ratio': 1.5}
    c = {'keypoints': 0, 'pck_hits': 0, 'err_sum': 0.0, 'on_mesh_hits': 0, 'height_ratio': None}
    p = pool_fits([a, b, c])
    assert p['people'] == 3 and p['keypoints'] == 15
    assert p['pck'] == pytest.approx(9 / 15) and p['on_mesh'] == pytest.approx(9 / 15)
    assert p['err'] == pytest.approx(3.0 / 15)
    assert (p['sized'], p['in_range'], p['height_ratio']) == (2, 1, 1.25)
    assert pool_fits([])['pck'] is None


@pytest.mark.usefixtures('renderer')
def test_criterion_is_all_on_the_mesh_and_none_a_box_height_away(body):
    """A mesh rendered from known parameters, its own projected joints as the detector's keypoints: every keypoint
    on the mesh, zero error, the same height. The same mesh moved sideways by a box height: no keypoint on it, none
    within PCK, an error of one box height (the joints' depths differ a little: +-10%)."""
    from common import vis
    W, H = 900, 400
    c = ((W - 1) / 2, (H - 1) / 2)
    root = torch.tensor([[-0.6, 0.1, 5.0]])
    with torch.no_grad():
        verts, joints = posed(body, upright_pose(), torch.zeros(1, 10), root)
    kp = np.concatenate([project(joints[0], c), np.full((17, 1), 0.9)], 1)
    h = float(np.ptp(kp[:, 1]))
    assert 200 < h < H and kp[:, 0].max() + h < W - 10          # the moved mesh is still in the image
    img = np.full((H, W, 3), 120, np.uint8)
    _, ids = vis.render_scene(img, [verts[0].numpy()], body.faces, Camera(W, H, F, c))
    fit = mesh_fit_2d(project(joints[0], c), kp, h, ids == 0)
    assert fit['keypoints'] == fit['on_mesh_hits'] == fit['pck_hits'] == 17
    assert fit['err_sum'] < 1e-6 and fit['height_ratio'] == pytest.approx(1.0)

    shift = torch.tensor([[h * 5.0 / F, 0.0, 0.0]])               # a box height at the root's depth
    _, ids = vis.render_scene(img, [(verts[0] + shift).numpy()], body.faces, Camera(W, H, F, c))
    assert (ids == 0).sum() > 2000
    moved = project(joints[0] + shift, c)
    fit = mesh_fit_2d(moved, kp, h, ids == 0)
    assert fit['keypoints'] == 17 and fit['on_mesh_hits'] == 0 and fit['pck_hits'] == 0
    assert 0.9 < fit['err_sum'] / 17 < 1.1

    # keypoints at or below the score 0.5 do not count; without a confident ankle there is no height ratio
    kp[15:, 2] = 0.5
    fit = mesh_fit_2d(moved, kp, h, None)
    assert fit['keypoints'] == 15 and fit['on_mesh_hits'] is None and fit['height_ratio'] is None


def synthetic_people(body, n, seed):
    """n people in a 960x640 image camera: poses of the synthetic generator, random shapes, turned up to +-57 degrees
    about the vertical, 4-8 m away; and starts perturbed as a network's prediction would be (every joint ~0.15 rad,
    the orientation ~0.15 rad, shapes by 0.5, the depth 15% too far)."""
    from scipy.spatial.transform import Rotation

    from tool.make_data.synthetic.poses import sample_body_pose
    rng = np.random.default_rng(seed)
    pose, shape, root = np.zeros((n, 72)), rng.normal(0, 0.7, (n, 10)), np.zeros((n, 3))
    for i in range(n):
        pose[i, 3:] = sample_body_pose(rng)[1]
        pose[i, :3] = (Rotation.from_euler('x', np.pi) * Rotation.from_euler('y', rng.uniform(-1, 1))).as_rotvec()
        root[i] = rng.uniform(-1.5, 1.5), rng.uniform(-0.3, 0.3), rng.uniform(4, 8)
    start = pose.copy()
    start[:, 3:66] += rng.normal(0, 0.15, (n, 63))
    start[:, :3] = (Rotation.from_rotvec(pose[:, :3]) * Rotation.from_rotvec(rng.normal(0, 0.15, (n, 3)))).as_rotvec()
    return (pose, shape, root), (start, shape + rng.normal(0, 0.5, (n, 10)), root * [1, 1, 1.15])


def test_refinement_fits_the_keypoints_and_stays_near_the_truth(body):
    """Measured (the default settings, 4 seeds of 8 people, all keypoints seen): the score-weighted 2D error falls
    from 12-16% of the box height to 0.4-0.5% (worst person 0.6%), MPJPE from 129-156 mm to 26-42 mm (worst 76),
    PA-MPJPE from 68-92 mm to 15-27 mm (worst 40), the root's depth error from 15% to under 3%. The bounds leave a
    margin of 2-3x."""
    c = (479.5, 319.5)
    (pose, shape, root), (p0, s0, r0) = synthetic_people(body, 6, seed=5)
    t = (lambda x: torch.as_tensor(x, dtype=torch.float32))
    with torch.no_grad():
        _, j_gt = posed(body, t(pose), t(shape), t(root))
        _, j0 = posed(body, t(p0), t(s0), t(r0))
    kp = np.concatenate([project(j_gt, c), np.ones((6, 17, 1))], -1)
    kp[0, 9:, 2] = 0.2     # one person's legs and wrists not seen by the detector: left to the priors
    p1, s1, r1, info = fit_to_keypoints(body, p0, s0, r0, kp, np.ptp(kp[..., 1], 1), Camera(960, 640, F, c),
                                        load_config().refine)
    with torch.no_grad():
        _, j1 = posed(body, p1, s1, r1)
    before, after = info['err_before'], info['err_after']
    assert before.mean() > 0.08 and after.mean() < 0.2 * before.mean() and after.max() < 0.02, (before, after)
    # the errors the fit was given: its keypoints, measured independently
    seen = kp[..., 2] > 0.5
    err = np.linalg.norm(project(j1, c) - kp[..., :2], axis=-1) / np.ptp(kp[..., 1], 1)[:, None]
    assert err[seen].max() < 0.05

    def rel(j):
        return (j - j[:, :1]).numpy()[:, :24].astype(np.float64)
    mpjpe0 = np.linalg.norm(rel(j0) - rel(j_gt), axis=-1).mean(1) * 1000
    mpjpe1 = np.linalg.norm(rel(j1) - rel(j_gt), axis=-1).mean(1) * 1000
    pa0, pa1 = pa_mpjpe(rel(j0), rel(j_gt)) * 1000, pa_mpjpe(rel(j1), rel(j_gt)) * 1000
    assert mpjpe1.mean() < 0.6 * mpjpe0.mean() and mpjpe1.mean() < 80 and mpjpe1.max() < 150, (mpjpe0, mpjpe1)
    assert pa1.mean() < 0.6 * pa0.mean() and pa1.mean() < 55, (pa0, pa1)
    depth = np.abs(r1[:, 2].numpy() - root[:, 2]) / root[:, 2]
    assert depth.max() < 0.08, depth


def test_pose_priors_prefer_plausible_poses(body):
    """The learnt prior scores the generator's own poses above poses it never makes; the joint limits are zero
    inside them and grow with a knee or an elbow bent backwards."""
    from tool.make_data.synthetic.poses import sample_body_pose
    rng = np.random.default_rng(1)
    real = torch.tensor(np.stack([sample_body_pose(rng)[1] for _ in range(200)]), dtype=torch.float32)
    noise = torch.tensor(rng.uniform(-1.5, 1.5, real.shape), dtype=torch.float32)
    prior = PosePrior()
    assert prior(real).median() + 50 < prior(noise).median()
    assert float(prior(real).min()) > -1e-3                     # 0 at the likeliest pose
    pose = torch.zeros(4, 72)
    pose[1, 3 * 4] = -0.5                                        # left knee (SMPL joint 4) bent forwards
    pose[2, 3 * 19 + 1] = -0.3                                   # right elbow (joint 19) bent backwards
    pose[3, 3 * 4], pose[3, 3 * 18 + 1] = 1.2, -1.5              # a knee and the left elbow bent the right way
    assert joint_limit_penalty(pose[:, 3:]).tolist() == pytest.approx([0.0, 0.25, 0.09, 0.0])
