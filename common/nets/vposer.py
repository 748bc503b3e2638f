"""Body-pose decoders: a frozen VPoser-v1 decoder (latent 32 -> 21 joints) and a weight-free per-joint 6D head.

Choose one in the model config:
- `pose_head: vposer` ONLY together with a VPoser v1 checkpoint (`load_vposer_v1`). A `VPoserDecoder`
  without its checkpoint is a *random frozen* network: it still outputs valid rotations, but the pose
  space it spans is arbitrary and nothing ever trains it, so results would be meaningless.
- `pose_head: rot6d` otherwise: the network predicts 21 x 6D directly (`rot6d_pose`), no external weights.

Both return SMPL body-joint axis-angles [B, 63] (SMPL joints 1..21; the hands 22, 23 are not included).
"""
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.errors import UserError
from common.geometry.transforms import matrix_to_axis_angle, rot6d_to_matrix
from common.nets.pretrained import read_checkpoint, unwrap_state_dict

NUM_BODY_JOINTS = 21
# 6D of the identity rotation in the view(3,2) layout: columns a1=(1,0,0), a2=(0,1,0).
IDENTITY_6D = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def rot6d_pose(code, identity_offset=False):
    """Per-joint 6D code [B, 21*6] -> axis-angle [B, 63].

    identity_offset=True adds the identity's 6D to every joint first, so a near-zero head output (the
    N(0, 0.01) init) decodes to the rest pose instead of an ill-conditioned Gram-Schmidt of tiny vectors.
    """
    B = code.shape[0]
    with torch.autocast(code.device.type, enabled=False):     # rotations in fp32 even inside AMP
        x = code.float().reshape(B, -1, 6)
        if identity_offset:
            x = x + x.new_tensor(IDENTITY_6D)
        return matrix_to_axis_angle(rot6d_to_matrix(x)).reshape(B, -1)


class VPoserDecoder(nn.Module):
    """human_body_prior v1 VPoser decoder (continuous 6D representation), frozen and always in eval mode.

    fc1 Linear(32,512) -> leaky_relu(0.2) -> dropout(0.1, never active) -> fc2 Linear(512,512) ->
    leaky_relu(0.2) -> out Linear(512, 21*6) -> 6D -> rotation matrix -> axis-angle [B,63]. The parameters
    do not require grad (keep them out of the optimizer), but gradients flow through to the latent code.
    """

    def __init__(self, latent_dim=32, num_neurons=512, num_joints=NUM_BODY_JOINTS):
        super().__init__()
        self.latent_dim, self.num_joints = latent_dim, num_joints
        self.bodyprior_dec_fc1 = nn.Linear(latent_dim, num_neurons)
        self.bodyprior_dec_fc2 = nn.Linear(num_neurons, num_neurons)
        self.bodyprior_dec_out = nn.Linear(num_neurons, num_joints * 6)
        self.dropout = nn.Dropout(p=0.1)
        self.loaded_from = None        # path of the checkpoint, None = random (see the module docstring)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode=True):
        # The reference's model.train() re-enabled this dropout on a frozen prior; never do that.
        return super().train(False)

    def forward(self, z, output_type='aa'):
        """z [B,32] -> axis-angle [B,63] (output_type='aa') or rotation matrices [B,21,3,3] ('matrot')."""
        if output_type not in ('aa', 'matrot'):
            raise ValueError(f"output_type must be 'aa' or 'matrot', got {output_type!r}")
        # A tiny network; fp32 even inside AMP so the prior decodes the same poses as it was trained on.
        with torch.autocast(z.device.type, enabled=False):
            w_dtype = self.bodyprior_dec_fc1.weight.dtype
            x = F.leaky_relu(self.bodyprior_dec_fc1(z.to(w_dtype)), negative_slope=0.2)
            x = self.dropout(x)
            x = F.leaky_relu(self.bodyprior_dec_fc2(x), negative_slope=0.2)
            x = self.bodyprior_dec_out(x).float()
            rotmat = rot6d_to_matrix(x.reshape(z.shape[0], self.num_joints, 6))
            if output_type == 'matrot':
                return rotmat
            return matrix_to_axis_angle(rotmat).reshape(z.shape[0], self.num_joints * 3)

    decode = forward


def _find_snapshot(path):
    """A v1 experiment folder (…/vposer_v1_0 with snapshots/*.pt) -> its last snapshot, like human_body_prior."""
    snaps = sorted(Path(path).glob('snapshots/*.pt')) or sorted(Path(path).glob('*.pt'))
    if not snaps:
        raise UserError(f'VPoser folder {path} has no snapshots/*.pt; point model.vposer_ckpt at the v1 .pt file')
    return snaps[-1]


def load_vposer_v1(path, latent_dim=32, num_neurons=512):
    """A frozen VPoserDecoder with the decoder weights of a human_body_prior v1 snapshot (a .pt state dict,
    possibly 'module.'-prefixed and with encoder keys, which are dropped) or of a v1 experiment folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.fspath(_find_snapshot(path))
    sd = unwrap_state_dict(read_checkpoint(path, 'VPoser checkpoint'), path)
    sd = {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in sd.items()}
    dec = {k: v for k, v in sd.items() if k.startswith('bodyprior_dec_')}
    if not dec:
        hint = ' (this looks like a VPoser v2 checkpoint; only v1 is supported)' \
            if any(k.startswith('decoder_net') for k in sd) else ''
        raise UserError(f'VPoser checkpoint {path} has no bodyprior_dec_* weights{hint}; use a human_body_prior '
                        f'v1 snapshot (vposer_v1_0/snapshots/*.pt) or set model.pose_head=rot6d')
    model = VPoserDecoder(latent_dim, num_neurons)
    own = model.state_dict()
    missing = sorted(set(own) - set(dec))
    bad = [k for k in dec if k in own and dec[k].shape != own[k].shape]
    if missing or bad:
        raise UserError(f'VPoser checkpoint {path} does not match the v1 decoder (latent {latent_dim}, '
                        f'{num_neurons} neurons, 21x6D out): missing {missing}, wrong shape {bad}; use a v1 '
                        f'snapshot or set model.pose_head=rot6d')
    model.load_state_dict({k: dec[k] for k in own})
    model.loaded_from = path
    return model
