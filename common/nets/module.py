"""3DCrowdNet heads: input-pose heatmaps, Pose2Feat, PositionNet (3D soft-argmax), RotationNet (graph conv).

Attribute names follow the reference modules (`conv`, `graph_block`, `hidden2root`, ...) so official
3DCrowdNet / SEFD checkpoints load into them (GraphConvBlock converts its per-vertex layout on load).
"""
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.body.joint_sets import GRAPH15
from common.nets.layer import GraphConvBlock, GraphResBlock, graph_adjacency, init_head_weights, make_conv_layers


@torch.no_grad()
def render_gaussian_heatmaps(joints, mask, size, sigma=2.5):
    """Gaussian heatmaps [B,J,H,W] of `joints` [B,J,2] (x,y in grid pixels, pixel-index coordinates 0..W-1).

    exp(-((x-u)^2 + (y-v)^2) / (2 sigma^2)) times `mask` [B,J,1] (or [B,J]); no gradient. Computed as the
    outer product of two 1D Gaussians (separable), so it costs O(J*(H+W)) exponentials.
    """
    H, W = size
    joints = joints.float() if not joints.is_floating_point() else joints
    xs = torch.arange(W, device=joints.device, dtype=joints.dtype)
    ys = torch.arange(H, device=joints.device, dtype=joints.dtype)
    gx = torch.exp(-(xs - joints[..., 0:1]) ** 2 / (2 * sigma ** 2))          # [B,J,W]
    gy = torch.exp(-(ys - joints[..., 1:2]) ** 2 / (2 * sigma ** 2))          # [B,J,H]
    hm = gy[..., :, None] * gx[..., None, :]
    mask = mask.to(hm.dtype).reshape(*joints.shape[:2], 1, 1)
    return hm * mask


class Pose2Feat(nn.Module):
    """Fuse the stem feature with the input-pose heatmaps.

    published (3DCrowdNet): concat -> conv3x3 -> BN -> ReLU, which replaces the stem feature by a new one.
    residual: stem feature + BN(conv3x3(concat)), the BN's scale starting at 0 and no ReLU: a pretrained backbone
    starts from its own features (and the linear block outputs of EfficientNet keep their sign), and the pose enters
    as the scale grows. Same parameters (and checkpoint keys) in both.
    """

    def __init__(self, num_joints=30, feat_dim=64, residual=False):
        super().__init__()
        self.num_joints, self.feat_dim, self.residual = num_joints, feat_dim, residual
        self.conv = make_conv_layers([feat_dim + num_joints, feat_dim])
        if residual:
            del self.conv[2]   # the ReLU

    def init_weights(self):
        init_head_weights(self)
        if self.residual:
            nn.init.zeros_(self.conv[1].weight)

    def forward(self, img_feat, joint_heatmap):
        fused = self.conv(torch.cat([img_feat, joint_heatmap.to(img_feat.dtype)], dim=1))
        return img_feat + fused if self.residual else fused


def soft_argmax_3d(volume):
    """volume [B,J,D,H,W] of logits -> (coord [B,J,3] as (x,y,z) in cell units, probabilities [B,J,D,H,W])."""
    B, J, D, H, W = volume.shape
    prob = F.softmax(volume.float().reshape(B, J, D * H * W), dim=2).reshape(B, J, D, H, W)
    dev = volume.device
    x = (prob.sum(dim=(2, 3)) * torch.arange(W, device=dev, dtype=prob.dtype)).sum(-1)
    y = (prob.sum(dim=(2, 4)) * torch.arange(H, device=dev, dtype=prob.dtype)).sum(-1)
    z = (prob.sum(dim=(3, 4)) * torch.arange(D, device=dev, dtype=prob.dtype)).sum(-1)
    return torch.stack([x, y, z], dim=-1), prob


def _normalise_grid(coord, sizes):
    """Cell coordinates -> grid_sample's [-1,1] (align_corners=True); a size-1 axis maps to 0, not NaN."""
    sizes = torch.tensor([max(s - 1, 1) for s in sizes], device=coord.device, dtype=coord.dtype)
    return coord / sizes * 2 - 1


class PositionNet(nn.Module):
    """1x1 conv to J*D channels -> [B,J,D,H,W] -> softmax over all cells -> soft-argmax.

    Returns joint_img [B,J,3] (x,y,z in cells; x,y index whatever feature map comes in: 8x8 at 256 px input,
    2x2 at 64 px) and joint_score [B,J,1], the softmaxed volume sampled trilinearly at joint_img. The depth
    D is fixed by the conv's output channels, so it is a constructor argument: pass the feature width
    (input_size // 32; the default 8 is 256 px) to keep the reference's cubic volume.
    """

    def __init__(self, num_joints=15, in_ch=2048, depth=8):
        super().__init__()
        self.num_joints, self.depth = num_joints, depth
        self.conv = make_conv_layers([in_ch, num_joints * depth], kernel=1, padding=0, bnrelu_final=False)

    def init_weights(self):
        init_head_weights(self)

    def forward(self, img_feat):
        B, _, H, W = img_feat.shape
        volume = self.conv(img_feat).reshape(B, self.num_joints, self.depth, H, W)   # reshape: channels_last-safe
        joint_img, prob = soft_argmax_3d(volume)
        grid = _normalise_grid(joint_img, (W, H, self.depth))
        # One sample per (batch, joint): fold J into the batch so grid_sample does B*J lookups, not B*J*J.
        score = F.grid_sample(prob.reshape(B * self.num_joints, 1, self.depth, H, W),
                              grid.reshape(B * self.num_joints, 1, 1, 1, 3), mode='bilinear',
                              align_corners=True)
        return joint_img, score.reshape(B, self.num_joints, 1)


class RotationOutput(NamedTuple):
    root_pose_6d: torch.Tensor    # [B,6]
    pose_code: torch.Tensor       # [B,pose_out]: VPoser latent (32) or per-joint 6D (21*6)
    betas: torch.Tensor           # [B,10]
    cam: torch.Tensor             # [B,3]: t_x, t_y (m), logit of the depth factor


def sample_joint_features(img_feat, joint_xy):
    """Bilinear features [B,J,C] of img_feat [B,C,H,W] at joint_xy [B,J,2] (cells; align_corners=True)."""
    H, W = img_feat.shape[2:]
    grid = _normalise_grid(joint_xy.float(), (W, H))[:, :, None, :]                 # [B,J,1,2]
    # fp32 sampling: bf16 grid coordinates would be off by ~0.01 cell; the map is small (8x8).
    feat = F.grid_sample(img_feat.float(), grid, mode='bilinear', align_corners=True)   # [B,C,J,1]
    return feat[..., 0].transpose(1, 2).to(img_feat.dtype)


class RotationNet(nn.Module):
    """Joint-sampled features + (detached) joint_img and score -> graph conv -> root 6D, pose code, betas, cam (None
    without camera_out: a camera solved elsewhere leaves no parameter unused, which DDP would not allow)."""

    def __init__(self, num_joints=15, in_ch=2048, hidden=128, num_res_blocks=4, pose_out=32,
                 skeleton=None, flip_pairs=None, shape_dim=10, input_pose_dim=0, image_gate_init=0.0, camera_out=True):
        super().__init__()
        if skeleton is None and flip_pairs is None and num_joints == len(GRAPH15):
            skeleton, flip_pairs = GRAPH15.skeleton, GRAPH15.flip_pairs
        adj = graph_adjacency(num_joints, skeleton or (), flip_pairs or ())
        self.num_joints, self.hidden, self.pose_out = num_joints, hidden, pose_out
        # input_pose_dim > 0 (model.pose_to_head): every vertex also sees the whole input 2D pose, and the image
        # features enter through a learned gate (from scratch it starts closed: the head first learns from the pose,
        # then opens to the image as its features become useful; pretrained features can start it open)
        self.input_pose_dim, self.image_gate_init = input_pose_dim, image_gate_init
        self.image_gate = nn.Parameter(torch.full((), float(image_gate_init))) if input_pose_dim else None
        self.graph_block = nn.Sequential(GraphConvBlock(adj, in_ch + 4 + input_pose_dim, hidden),
                                         *[GraphResBlock(adj, hidden) for _ in range(num_res_blocks)])
        flat = num_joints * hidden
        self.hidden2root = nn.Linear(flat, 6)
        self.hidden2pose = nn.Linear(flat, pose_out)
        self.hidden2shape = nn.Linear(flat, shape_dim)
        self.hidden2cam = nn.Linear(flat, 3) if camera_out else None

    def init_weights(self):
        init_head_weights(self)
        if self.image_gate is not None:
            nn.init.constant_(self.image_gate, self.image_gate_init)

    def forward(self, img_feat, joint_img, joint_score, input_pose=None):
        """input_pose [B, input_pose_dim] (with input_pose_dim > 0): see the constructor."""
        feat = sample_joint_features(img_feat, joint_img[..., :2])
        parts = [feat, joint_img.detach().to(feat.dtype), joint_score.detach().to(feat.dtype)]
        if self.input_pose_dim:
            parts[0] = feat * self.image_gate.to(feat.dtype)
            parts.append(input_pose.to(feat.dtype)[:, None].expand(-1, self.num_joints, -1))
        feat = torch.cat(parts, dim=2)
        feat = self.graph_block(feat).flatten(1)
        # fp32 outputs even under autocast: they feed Gram-Schmidt, SMPL and the camera, where bf16 is too coarse.
        return RotationOutput(self.hidden2root(feat).float(), self.hidden2pose(feat).float(),
                              self.hidden2shape(feat).float(),
                              self.hidden2cam(feat).float() if self.hidden2cam is not None else None)
