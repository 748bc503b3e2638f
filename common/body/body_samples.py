"""Training batches made from the body model alone: random GT SMPL bodies with every target the
loaders produce, and a noise image. For overfit tests and model benchmarks, where no dataset is
wanted; the targets follow the same conventions as the real loaders (see main/model.py)."""
import math

import torch

from common.body.joint_sets import SMPL30
from common.geometry.transforms import axis_angle_to_matrix, matrix_to_axis_angle, project_points


def random_smpl_params(batch_size, generator, pose_std=0.2, shape_std=0.5):
    pose = torch.randn(batch_size, 72, generator=generator) * pose_std
    pose[:, :3] = torch.randn(batch_size, 3, generator=generator) * 0.1
    pose[:, 0] += math.pi  # SMPL is y-up; the camera is y-down: upright people have root ~ pi about x
    pose[:, 66:] = 0       # hands
    # canonical axis-angle (angle <= pi), the form the model outputs: an L1 on axis-angle cannot match
    # pi + e about x with pi - e about -x, the same rotation
    pose = matrix_to_axis_angle(axis_angle_to_matrix(pose.view(-1, 24, 3))).reshape(batch_size, 72)
    shape = torch.randn(batch_size, 10, generator=generator) * shape_std
    return pose, shape


@torch.no_grad()
def make_batch(body_model, batch_size, input_size, focal=(5000.0, 5000.0), camera_3d_size=2.5,
               bbox_3d_size=2.0, in_channels=3, seed=0, pose_noise_px=1.0):
    g = torch.Generator().manual_seed(seed)
    hm = input_size // 4
    pose, shape = random_smpl_params(batch_size, g)
    k = math.sqrt(focal[0] * focal[1] * camera_3d_size ** 2) / input_size
    trans = torch.cat([torch.randn(batch_size, 2, generator=g) * 0.05,
                       k * (0.75 + 0.15 * torch.rand(batch_size, 1, generator=g))], dim=1)
    verts, joints = body_model(pose, shape, trans)
    root = joints[:, SMPL30.root_idx:SMPL30.root_idx + 1]
    xy = project_points(joints, focal, (input_size / 2, input_size / 2)) * (hm / input_size)
    z = ((joints[..., 2:] - root[..., 2:]) / (bbox_3d_size / 2) + 1) / 2 * hm
    joint_img = torch.cat([xy, z], dim=-1)
    trunc = ((joint_img >= 0) & (joint_img < hm)).all(-1, keepdim=True).float()
    param_valid = torch.ones(batch_size, 24, 3)   # the bodies are the truth: every rotation is a target
    ones = torch.ones(batch_size, 1)
    inputs = {'img': torch.rand(batch_size, 3, input_size, input_size, generator=g),
              'joints': xy + torch.randn(xy.shape, generator=g) * pose_noise_px,
              'joints_mask': trunc}
    if in_channels == 4:
        inputs['edge'] = (torch.rand(batch_size, 1, input_size, input_size, generator=g) > 0.9).float()
    targets = {'orig_joint_img': joint_img, 'fit_joint_img': joint_img.clone(),
               'orig_joint_cam': joints - root, 'fit_joint_cam': joints - root,
               'pose_param': pose, 'shape_param': shape, 'mesh_cam': verts - root}
    meta = {'orig_joint_valid': torch.ones(batch_size, len(SMPL30), 1), 'orig_joint_trunc': trunc,
            'fit_param_valid': param_valid.view(batch_size, 72), 'fit_joint_trunc': trunc.clone(),
            'is_valid_fit': ones, 'is_3D': ones.clone()}
    return inputs, targets, meta
