"""3DCrowdNet forward for the three variants (baseline / teacher / student).

Input crop (RGB, plus an edge channel for teacher and student) and input 2D pose -> stem feature,
pose heatmaps -> Pose2Feat -> backbone stages -> PositionNet (15 joints, 3D heatmap) -> RotationNet
(root 6D, body pose code, betas, camera) -> SMPL mesh, SMPL-30 joints, projected joints.

The student (SEFD) computes its edge channel itself (common/edges, frozen), and in training also runs the
frozen teacher on the same crop with the SMPL overlap edge and the same pose heatmaps; a distillation loss
(common/nets/distill.py) pulls its backbone stages toward the teacher's. Teacher and edge estimators are held
by `Frozen`: outside the state dict, the optimizer and train().

Batch keys (the loaders produce exactly these; shapes per sample, J=30 SMPL-30 joints, grid = input/4):
  inputs:  img [3,S,S] RGB in [0,1]; joints [J,2|3] input pose (grid px); joints_mask [J,1];
           edge [1,S,S] (teacher: SMPL overlap edge; student: its edge when computed in the loader, else the
           model computes it from img); teacher_edge [1,S,S] (distilled student in training: the teacher's input)
  targets: orig_joint_img [J,3] (grid px; z grid px for 3D sets), fit_joint_img [J,3], orig_joint_cam [J,3] (m,
           root-relative), fit_joint_cam [J,3], pose_param [72], shape_param [10]
  meta:    orig_joint_valid [J,1], orig_joint_trunc [J,1], fit_param_valid [72], fit_joint_trunc [J,1],
           is_valid_fit [1], is_3D [1]
"""
import copy
import math
from typing import NamedTuple

import torch
import torch.nn as nn

from common.body.joint_sets import GRAPH15, SMPL30
from common.body.smpl import body_model as default_body_model
from common.edges.base import build_edge
from common.errors import UserError
from common.geometry.transforms import axis_angle_to_matrix, matrix_to_axis_angle, project_points, rot6d_to_matrix
from common.nets.camera_anchor import anchor_camera
from common.nets.distill import build_distill_loss
from common.nets.frozen import Frozen
from common.nets.loss import CoordLoss, ParamLoss, UncertaintyWeighting
from common.nets.module import Pose2Feat, PositionNet, RotationNet, render_gaussian_heatmaps
from common.nets.vposer import VPoserDecoder, load_vposer_v1, rot6d_pose
from common.registry import BACKBONES

# Graph-15 joints as a subset of SMPL-30 (the PositionNet targets)
GRAPH15_IN_SMPL30 = torch.tensor([SMPL30.index(n) for n in GRAPH15.joints])


# The root's 6D offset: Rx(pi), a person upright in the y-down camera, facing it (the usual case; SPIN likewise
# starts from the mean orientation). From the identity (upside down), the matrix loss of an upright target would
# start at its antipode, where its gradient vanishes.
UPRIGHT_6D = (1.0, 0.0, 0.0, -1.0, 0.0, 0.0)

TASK_TERMS = ('body_joint_img', 'smpl_joint_img', 'smpl_pose', 'smpl_shape', 'body_joint_proj', 'body_joint_cam',
              'smpl_joint_cam')

# model.camera=centred: the depth logit's offset, logit(0.85): g = 0 is the depth at which a person of ~1.7 m fills
# the crop as the loaders crop (the box x1.25), k = the depth at which camera_3d_size (2.5 m) fills it
CENTRED_DEPTH = 0.85
CAMERA_CENTRE = math.log(CENTRED_DEPTH / (1 - CENTRED_DEPTH))


def task_terms(cfg):
    return (('smpl_root',) if cfg.train.root_loss == 'matrix' else ()) + TASK_TERMS + \
        (('cam_prior',) if cfg.model.camera == 'centred' else ())


def input_pose_vector(inputs, hm_size):
    """The input 2D pose as one vector per sample [B, 3J]: x, y in [-1, 1] (0 where absent) and presence."""
    joints, mask = inputs['joints'][:, :, :2], inputs['joints_mask'].reshape(*inputs['joints'].shape[:2], 1)
    mask = mask.to(joints.dtype)
    return torch.cat([(joints / hm_size * 2 - 1) * mask, mask], dim=-1).flatten(1)


class Head(NamedTuple):
    """PositionNet's and RotationNet's answer for a batch."""
    joint_img: torch.Tensor     # [B,15,3] the 2D joints (and depth) in feature-map cells
    joint_score: torch.Tensor   # [B,15,1] their confidences
    pose: torch.Tensor          # [B,72] SMPL axis-angle, root first
    shape: torch.Tensor         # [B,10]
    cam: torch.Tensor           # [B,3] the camera output (x, y, g), None for model.camera=anchored (Model.camera)
    root_matrix: torch.Tensor   # [B,3,3] the root rotation


class Body(NamedTuple):
    """The SMPL body of a Head's parameters."""
    mesh_render: torch.Tensor   # [B,V,3] vertices in the crop camera
    joint_cam: torch.Tensor     # [B,30,3] SMPL-30 joints relative to the root
    mesh_cam: torch.Tensor      # [B,V,3] vertices relative to the root
    joint_proj: torch.Tensor    # [B,30,2] the joints projected into the crop, in heatmap px
    cam_trans: torch.Tensor     # [B,3] SMPL's translation in the crop camera


class Model(nn.Module):
    def __init__(self, cfg, body_model=None, teacher=None):
        super().__init__()
        mc = cfg.model
        self.cfg = cfg
        self.input_size = mc.input_size
        self.hm_size = mc.input_size // 4
        self.feat_size = mc.input_size // 32
        self.backbone = BACKBONES.build(mc.backbone, in_channels=cfg.in_channels)
        feat_ch = self.backbone.out_channels[-1]
        self.pose2feat = Pose2Feat(num_joints=len(SMPL30), feat_dim=self.backbone.stem_channels,
                                   residual=mc.pose2feat == 'residual')
        self.position_net = PositionNet(num_joints=len(GRAPH15), in_ch=feat_ch, depth=self.feat_size)
        pose_out = 32 if mc.pose_head == 'vposer' else 21 * 6
        self.rotation_net = RotationNet(num_joints=len(GRAPH15), in_ch=feat_ch, pose_out=pose_out,
                                        input_pose_dim=3 * len(SMPL30) if mc.pose_to_head else 0,
                                        image_gate_init=mc.image_gate_init, camera_out=mc.camera != 'anchored')
        if mc.pose_head == 'vposer':
            from common.paths import resolve_path
            from main.config import VPOSER_FROM_CHECKPOINT
            # 3DCrowdNet/SEFD snapshots carry the decoder: its weights arrive with the model's state dict
            self.vposer = VPoserDecoder() if mc.vposer_ckpt == VPOSER_FROM_CHECKPOINT else \
                load_vposer_v1(resolve_path(mc.vposer_ckpt))
        # a constant of the run (no persistent buffers, never in checkpoints); a given one is copied, since
        # .to(device) would move the caller's
        self.body_model = copy.deepcopy(body_model) if body_model is not None else default_body_model(mc)
        self.register_buffer('graph15_idx', GRAPH15_IN_SMPL30.clone(), persistent=False)
        self.root_idx = SMPL30.root_idx
        self.coord_loss, self.param_loss = CoordLoss(), ParamLoss()
        student = cfg.mode == 'student'
        self.edge = Frozen(build_edge(cfg.edge)) if student else None
        # learned parts of the loss (gc blocks, loss weights) are ordinary submodules: optimised and saved
        self.distill_loss = build_distill_loss(cfg.distill, self.backbone.out_channels) if student else None
        self.teacher = None
        terms = task_terms(cfg) + tuple(self.distill_loss.term_names() if self.distill_loss is not None else ())
        self.loss_weighting = UncertaintyWeighting(terms) if cfg.distill.loss_weighting == 'uncertainty' else None
        self.init_weights()
        if teacher is not None:
            self.set_teacher(teacher)

    def init_weights(self):
        for m in (self.pose2feat, self.position_net, self.rotation_net):
            m.init_weights()

    def set_teacher(self, teacher):
        """Attach the frozen teacher (a teacher-mode Model) whose features the student distils."""
        if self.distill_loss is None:
            raise UserError('this model distils nothing (distill.loss=none): it takes no teacher')
        check_teacher_fits(self.cfg, teacher.cfg, where='the teacher model')
        self.teacher = Frozen(teacher)
        return self

    @property
    def camera_k(self):
        """Depth scale of the predicted camera: t_z = k * sigmoid(gamma)."""
        (fx, fy), s = self.cfg.model.focal, self.cfg.model.camera_3d_size
        return math.sqrt(fx * fy * s * s / (self.input_size * self.input_size))

    def edge_channel(self, inputs):
        """The 4th input channel: given by the loader (teacher, loader-side student edges) or computed here."""
        if 'edge' in inputs:
            return inputs['edge']
        if self.edge is None:
            raise UserError(f'mode {self.cfg.mode} needs inputs["edge"] (the SMPL overlap edge) from the loader')
        if self.edge.module.in_loader:
            raise UserError(f'edge.type={self.cfg.edge.type} is computed in the loader, but the batch has no "edge"')
        return self.edge(inputs['img']).to(inputs['img'].dtype)

    @staticmethod
    def stem_input(img, edge=None):
        x = img if edge is None else torch.cat([img, edge.to(img.dtype)], dim=1)
        if img.is_contiguous(memory_format=torch.channels_last) and not img.is_contiguous():
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def heatmaps(self, inputs):
        return render_gaussian_heatmaps(inputs['joints'][:, :, :2], inputs['joints_mask'],
                                        (self.hm_size, self.hm_size), self.cfg.model.sigma)

    def features(self, x, heatmaps):
        """Pose-guided backbone stages (c1..c4) of the stem input x; distillation taps these."""
        early = self.backbone(x)
        return self.backbone(self.pose2feat(early, heatmaps), skip_early=True)

    def head(self, feat, inputs):
        """The Head of the last stage's features."""
        joint_img, joint_score = self.position_net(feat)
        pose_in = input_pose_vector(inputs, self.hm_size) if self.cfg.model.pose_to_head else None
        drop = self.cfg.model.head_pose_dropout
        if pose_in is not None and self.training and drop > 0:
            pose_in = pose_in * (torch.rand(pose_in.shape[0], 1, device=pose_in.device) >= drop).to(pose_in.dtype)
        root6d, pose_code, shape, cam = self.rotation_net(feat, joint_img, joint_score, pose_in)
        # 6D outputs start near zero (head init): offset so Gram-Schmidt is well-conditioned and the first
        # prediction is a person standing upright, facing the camera
        root_matrix = rot6d_to_matrix(root6d + root6d.new_tensor(UPRIGHT_6D))
        root_pose = matrix_to_axis_angle(root_matrix)
        if self.cfg.model.pose_head == 'vposer':
            body_pose = self.vposer(pose_code)
        else:
            body_pose = rot6d_pose(pose_code, identity_offset=True)
        hands = body_pose.new_zeros(body_pose.shape[0], 6)
        pose = torch.cat([root_pose, body_pose, hands], dim=1)
        return Head(joint_img, joint_score, pose, shape, cam, root_matrix)

    def camera(self, cam, joints, inputs):
        """SMPL's translation [B,3] in the crop camera, for a body whose joints [B,30,3] (at no translation) are given.
        centred / published: of the camera output cam [B,3] = (x, y, g). anchored: solved, not predicted (no cam):
        the root at the depth and pixel that lay the body onto the input 2D pose (common/nets/camera_anchor.py),
        differentiably, so that the projection loss scores the pose as laid onto the 2D pose (why, and the variants
        measured: docs/findings.md, "One learnt camera depth cannot fit close-ups")."""
        if self.cfg.model.camera == 'anchored':
            root = joints[:, self.root_idx]
            pose_2d = inputs['joints'][:, :, :2] * (self.input_size / self.hm_size)
            fx, fy = self.cfg.model.focal
            depth, root_px = anchor_camera(pose_2d, inputs['joints_mask'].reshape(pose_2d.shape[:2]),
                                           joints - root[:, None], math.sqrt(fx * fy), self.input_size,
                                           self.camera_k * CENTRED_DEPTH)
            uv = root_px - self.input_size / 2
            return torch.stack([uv[:, 0] * depth / fx, uv[:, 1] * depth / fy, depth], dim=1) - root
        # published: sigmoid(g) starts at half the usual depth (people twice too big), so the first steps drive g into
        # saturation (measured: g ~ 10-25 within 10 Adam steps at lr 1e-3), where the projection loss can no longer
        # move the depth; centred starts at the usual depth and keeps g near it with a prior
        cam = cam.float()
        g = cam[:, 2:] + (CAMERA_CENTRE if self.cfg.model.camera == 'centred' else 0.0)
        return torch.cat([cam[:, :2], self.camera_k * torch.sigmoid(g)], dim=1)

    def get_coord(self, head, inputs):
        """The Body of a Head."""
        # smplx runs in float32 under autocast (LBS in bf16 loses millimetres)
        with torch.autocast(device_type=head.pose.device.type, enabled=False):
            verts, joints = self.body_model(head.pose.float(), head.shape.float(), None)
            cam_trans = self.camera(head.cam, joints, inputs)
            verts, joints = verts + cam_trans[:, None], joints + cam_trans[:, None]
        f = self.cfg.model.focal
        c = (self.input_size / 2, self.input_size / 2)
        joint_proj = project_points(joints, f, c) * (self.hm_size / self.input_size)
        root = joints[:, self.root_idx:self.root_idx + 1]
        return Body(verts, joints - root, verts - root, joint_proj, cam_trans)

    def forward(self, inputs, targets=None, meta=None, mode='train'):
        """mode 'train': (total loss, {term: scalar}); mode 'test': the predictions (see below)."""
        edge = self.edge_channel(inputs) if self.cfg.in_channels == 4 else None
        heatmaps = self.heatmaps(inputs)
        feats = self.features(self.stem_input(inputs['img'], edge), heatmaps)
        head = self.head(feats[-1], inputs)
        body = self.get_coord(head, inputs)
        if mode == 'train':
            terms = {k: v.mean() for k, v in self.losses(head, body, targets, meta).items()}
            if self.cfg.model.camera == 'centred':
                terms['cam_prior'] = head.cam[:, 2].float().pow(2).mean()
            weights = self.cfg.train.loss_weights
            weighted = {k: v * getattr(weights, k) for k, v in terms.items()}
            if self.distill_loss is not None:
                distill = self.distill_loss(feats, self.teacher_features(inputs, heatmaps))
                terms.update(distill)
                weighted.update(distill)
            total = self.loss_weighting(weighted) if self.loss_weighting is not None else sum(weighted.values())
            return total, terms
        out = {'joint_img': head.joint_img * (self.hm_size / self.feat_size), 'joint_score': head.joint_score,
               'joint_proj': body.joint_proj, 'joint_cam': body.joint_cam, 'mesh_cam': body.mesh_cam,
               'mesh_cam_render': body.mesh_render, 'pose': head.pose, 'shape': head.shape,
               'cam_trans': body.cam_trans}
        if edge is not None:
            out['edge'] = edge
        return out

    def teacher_features(self, inputs, heatmaps):
        if self.teacher is None:
            raise UserError('a distilled student trains with its teacher: set distill.teacher_ckpt '
                            '(or distill.loss=none for the edge-only student)')
        if 'teacher_edge' not in inputs:
            raise UserError('the batch has no "teacher_edge" (the SMPL overlap edge the teacher sees); '
                            'the loader adds it for a distilled student in training')
        x = self.stem_input(inputs['img'], inputs['teacher_edge'])
        with torch.no_grad():
            return self.teacher.module.features(x, heatmaps)

    def losses(self, head, body, targets, meta):
        """3DCrowdNet's seven L1 terms of a Head and its Body, un-reduced (forward takes each term's mean: masked
        elements count in the denominator, as in the reference, so the published weights carry over; forward weighs
        each by train.loss_weights). With train.root_loss=matrix the root rotation is compared as a rotation matrix
        ('smpl_root'), the 23 other joints' axis-angles in 'smpl_pose'; with axis_angle all 72 values in 'smpl_pose',
        as the reference."""
        idx, r = self.graph15_idx, self.hm_size / self.feat_size
        joint_img, pose, joint_cam, joint_proj = head.joint_img, head.pose, body.joint_cam, body.joint_proj
        is_3d, valid_fit = meta['is_3D'].view(-1, 1, 1), meta['is_valid_fit'].view(-1, 1, 1)
        pose_valid = meta['fit_param_valid'] * valid_fit[:, 0]
        if self.cfg.train.root_loss == 'matrix':
            # upright people in a y-down camera have a root rotation of angle ~pi, where axis-angle flips between
            # +axis and -axis for nearly equal rotations: an L1 on it chases inconsistent targets
            root_gt = axis_angle_to_matrix(targets['pose_param'][:, :3].float())
            root = {'smpl_root': self.param_loss(head.root_matrix.flatten(1), root_gt.flatten(1),
                                                 pose_valid[:, :1])}
            pose, pose_gt, pose_valid = pose[:, 3:], targets['pose_param'][:, 3:], pose_valid[:, 3:]
        else:
            root, pose_gt = {}, targets['pose_param']
        return {**root,
            'body_joint_img': self.coord_loss(joint_img * r, targets['orig_joint_img'][:, idx],
                                              meta['orig_joint_trunc'][:, idx], is_3d) / r,
            'smpl_joint_img': self.coord_loss(joint_img * r, targets['fit_joint_img'][:, idx],
                                              meta['fit_joint_trunc'][:, idx] * valid_fit) / r,
            'smpl_pose': self.param_loss(pose, pose_gt, pose_valid),
            'smpl_shape': self.param_loss(head.shape, targets['shape_param'], valid_fit[:, 0]),
            'body_joint_proj': self.coord_loss(joint_proj, targets['orig_joint_img'][:, :, :2],
                                               meta['orig_joint_trunc']) / r,
            'body_joint_cam': self.coord_loss(joint_cam, targets['orig_joint_cam'],
                                              meta['orig_joint_valid'] * is_3d),
            'smpl_joint_cam': self.coord_loss(joint_cam, targets['fit_joint_cam'], valid_fit),
        }


def check_teacher_fits(cfg, teacher_cfg, where):
    """A student distils a teacher of its own architecture: one line naming what differs."""
    if teacher_cfg.mode != 'teacher' or teacher_cfg.edge.type != 'smpl_overlap':
        raise UserError(f'{where} is a {teacher_cfg.mode} model (edge.type={teacher_cfg.edge.type}); the student '
                        f'needs a teacher trained with mode=teacher, edge.type=smpl_overlap')
    for key in ('backbone', 'input_size', 'pose_head'):
        mine, theirs = getattr(cfg.model, key), getattr(teacher_cfg.model, key)
        if mine != theirs:
            raise UserError(f'{where}: expected model.{key}={mine} (the student\'s) but found {theirs}; train the '
                            f'student with model.{key}={theirs} or use a teacher of the same architecture')
