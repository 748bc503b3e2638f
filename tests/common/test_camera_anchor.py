"""The closed-form camera anchor (common/nets/camera_anchor.py) on bodies projected with a known camera."""
import math

import pytest
import torch

from common.body.joint_sets import SMPL30
from common.body.smpl import get_body_model
from common.nets.camera_anchor import anchor_camera

F, SIZE, FALLBACK = 5000.0, 128, 83.0
UPPER = ('Neck', 'Nose', 'L_Ear', 'R_Ear', 'L_Shoulder', 'R_Shoulder', 'L_Elbow', 'R_Elbow', 'L_Wrist', 'R_Wrist')
DETECTED = UPPER + ('Pelvis', 'L_Hip', 'R_Hip', 'L_Knee', 'R_Knee', 'L_Ankle', 'R_Ankle', 'L_Eye', 'R_Eye')


@pytest.fixture(scope='module')
def body():
    return get_body_model(procedural_vertices=800)


def posed(body, turn_deg, bend):
    """SMPL-30 joints [30,3] relative to the root of the mean body upright in the y-down camera (Rx(pi)), turned
    turn_deg about the vertical, its hips flexed by `bend` rad (a seated person's legs come towards the camera)."""
    pose = torch.zeros(1, 72)
    pose[0, 3] = pose[0, 6] = -bend                          # both hips about x
    _, joints = body(pose, torch.zeros(1, 10), None)
    t = math.radians(turn_deg)
    upright = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])
    turn = torch.tensor([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    return (joints[0] - joints[0, SMPL30.root_idx]) @ (turn @ upright).T


def project(rel, depth, root_px):
    root = torch.tensor([(root_px[0] - SIZE / 2) * depth / F, (root_px[1] - SIZE / 2) * depth / F, depth])
    cam = rel + root
    return F * cam[:, :2] / cam[:, 2:] + SIZE / 2


def mask_of(names):
    m = torch.zeros(1, len(SMPL30))
    m[0, [SMPL30.index(n) for n in names]] = 1
    return m


@pytest.mark.parametrize('names', [DETECTED, UPPER], ids=['whole', 'head_and_shoulders'])
@pytest.mark.parametrize('turn,bend', [(0, 0.0), (60, 0.0), (-30, 1.4)])
def test_recovers_depth_and_root(body, names, turn, bend):
    """The camera a body was projected with, from the joints that count, also from the upper body alone (the close-up
    a single learnt depth cannot fit), turned or seated; within what weak perspective neglects (the body's own depth
    relief of a few decimetres at tens of metres)."""
    rel = posed(body, turn, bend)
    for depth, root_px in ((30.0, (70.0, 150.0)), (90.0, (60.0, 64.0))):
        z, root = anchor_camera(project(rel, depth, root_px)[None], mask_of(names), rel[None], F, SIZE, FALLBACK)
        assert z.item() == pytest.approx(depth, rel=0.03)
        assert torch.allclose(root[0], torch.tensor(root_px), atol=0.02 * SIZE)


def test_without_two_joints_falls_back(body):
    rel = posed(body, 0, 0.0)
    joints = project(rel, 30.0, (70, 90))[None]
    for names in ((), ('Nose',)):                         # nothing, or a place without a length
        z, root = anchor_camera(joints, mask_of(names), rel[None], F, SIZE, FALLBACK)
        assert z.item() == pytest.approx(FALLBACK) and root[0].tolist() == [SIZE / 2, SIZE / 2]


def test_gradients_stay_finite(body):
    """Differentiable in the body's joints (the model trains through it), also where the 2D joints coincide."""
    rel = posed(body, 0, 0.0)[None].requires_grad_()
    for joints in (project(rel.detach()[0], 30.0, (70, 90))[None], torch.full((1, len(SMPL30), 2), 50.0)):
        z, root = anchor_camera(joints, mask_of(DETECTED), rel, F, SIZE, FALLBACK)
        (z + root.sum()).backward()
        assert torch.isfinite(rel.grad).all()
        rel.grad = None
