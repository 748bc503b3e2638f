"""Published 3DCrowdNet / SEFD snapshots -> checkpoints of this project.

A published `snapshot_<epoch>.pth.tar` (3DCrowdNet_RELEASE, ICCV2023_SEFD_RELEASE, their demo checkpoints) is
{'epoch', 'network', 'optimizer'}; 'network' is the state dict of the DataParallel-wrapped model, so every key
starts with 'module.'. `convert_published(obj, path)` turns it into {'model': our state dict, 'config': the
config its weights imply, 'epoch', 'published': {...}}; `main.checkpoint.load_checkpoint` does that on load
(test.py, train.py, load_teacher, the demo), `tool/convert/convert_checkpoint.py IN OUT` once, to a file.

What maps where (published key after 'module.'  ->  ours):

| published                                                   | ours                                             |
|-------------------------------------------------------------|--------------------------------------------------|
| backbone.*                                                  | backbone.* (torchvision layout; conv1 3 or 4 ch) |
| pose2feat.conv.{0,1}.*                                      | pose2feat.conv.{0,1}.*                           |
| position_net.conv.0.*                                       | position_net.conv.0.* (15*D outputs)             |
| rotation_net.graph_block.<b>[.graph_block{1,2}]             | rotation_net.graph_block.<b>[.graph_block{1,2}]  |
|   .fcbn_list.<j>.0.weight [out,in] / .bias                  |   .weight[j] [in,out] / .bias[j]                 |
|   .fcbn_list.<j>.1.{weight,bias,running_mean,running_var}   |   .bn.* (the 15 vertices concatenated)           |
|   .fcbn_list.<j>.1.num_batches_tracked                      |   .bn.num_batches_tracked (vertex 0's)           |
| rotation_net.root_pose_out.0.*                              | rotation_net.hidden2root.* (bias - upright 6D)   |
| rotation_net.pose_out.0.*                                   | rotation_net.hidden2pose.* (VPoser code, 32)     |
| rotation_net.shape_out.0.* / cam_out.0.*                    | rotation_net.hidden2shape.* / hidden2cam.*       |
| vposer.vposer.bodyprior_dec_{fc1,fc2,out}.*                 | vposer.bodyprior_dec_*.*                         |
| vposer.vposer.bodyprior_enc_*                               | dropped (the encoder is never used)              |
| smpl_overlap_backbone[.module].{backbone,pose2feat}.*       | ckpt['teacher']['model'] (a SEFD student's       |
|                                                             |   frozen teacher: backbone and Pose2Feat only)   |
| GCBLOCK<k>.*  (SEFD GC_loss student)                        | distill_loss.blocks.<k>.*                        |
| ced.*, gau_blur.*                                           | dropped (Canny and blur have no weights)         |
| human_model_layer.th_*  (smplpytorch SMPL_Layer buffers)    | dropped (the body model: model.smpl_dir)         |
| hed_edge.*, RCF_edge.*, pidinet[.module].*, edge_module[1].*| ckpt['edge_net'] {'type', 'state_dict'} (edge    |
|                                                             |   estimators are frozen, outside our model; the  |
|                                                             |   tool writes them to a file for edge.weights)   |
| 'optimizer' (and 'epoch')                                   | dropped (other parameter groups; the published   |
|                                                             |   code never restored it either) ('epoch' kept)  |

Why the root bias moves: our head adds the upright orientation's 6D (Rx(pi), main.model.UPRIGHT_6D) to the root
output before Gram-Schmidt (so a freshly initialised head starts at a person standing upright); the published
head does not, so the same function needs bias - (1,0,0,-1,0,0). The rotation graph keeps GraphConvBlock's own
conversion of the per-vertex layout.

The config is inferred from the weights:
  model.backbone     resnet<depth>: blocks per stage of backbone.layer1..4 (and conv3: Bottleneck)
  model.input_size   32 * D, D = PositionNet outputs / 15 (the published 256 px crop: D = 8). The weights fix
                     only this: every layer is convolutional or samples at joints, so a crop's width leaves no
                     trace in them. The crop is taken square, as in every released snapshot and config; a YAML
                     of the published code with a non-square input_img_shape is refused (main/published_config.py)
  model.pose_head    vposer (32 pose outputs; model.vposer_ckpt=checkpoint when the VPoser weights are inside,
                     so no separate VPoser file is needed) or rot6d (21*6)
  mode / edge        conv1 with 3 input channels: baseline.
                     4 channels and a teacher inside: a distilled SEFD student; edge.type from the edge net
                       inside (none: canny), distill.loss gc with GCBLOCKs else log_softmax_l1 (every released
                       SEFD student), distill.teacher_ckpt = this file (it carries the teacher).
                     4 channels and an edge net but no teacher: an edge-only student (distill.loss none).
                     4 channels and nothing else: a teacher (edge.type smpl_overlap). A Canny edge-only
                       student ('*_nodistil') has exactly the same weights: settle it with --cfg (e.g. SEFD's
                       3dpw_canny_nodistil_test.yml) or `mode=student edge.type=canny distill.loss=none`.
"""
import dataclasses
import logging
import re
from collections.abc import Mapping

import torch

from common.errors import UserError
from common.nets.module import RotationNet
from main.model import UPRIGHT_6D

log = logging.getLogger('sefd')

GRAPH_JOINTS = 15
HEADS = {'root_pose_out.0.': 'hidden2root.', 'pose_out.0.': 'hidden2pose.', 'shape_out.0.': 'hidden2shape.',
         'cam_out.0.': 'hidden2cam.'}
# edge estimators of a SEFD student, by the attribute its model gives them
EDGE_NETS = {'hed_edge': 'hed', 'RCF_edge': 'rcf', 'pidinet': 'pidinet', 'edge_module': 'see', 'edge_module1': 'see'}
DROPPED = ('ced.', 'gau_blur.', 'human_model_layer.')   # no weights, or SMPL's own data
DEPTHS = {((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), False): 34, ((3, 4, 6, 3), True): 50,
          ((3, 4, 23, 3), True): 101, ((3, 8, 36, 3), True): 152}


def is_published(obj):
    """A published snapshot: {'network': state dict, ...} and not one of ours ({'model', 'config'})."""
    return isinstance(obj, Mapping) and 'model' not in obj and isinstance(obj.get('network'), Mapping) \
        and any(torch.is_tensor(v) for v in obj['network'].values())


def _strip(prefix, sd):
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _unwrap(sd):
    """Drop the 'module.' of DataParallel (every key has it, or none)."""
    return _strip('module.', sd) if all(k.startswith('module.') for k in sd) else dict(sd)


def resnet_depth(sd, path):
    blocks = tuple(len({k.split('.')[1] for k in sd if k.startswith(f'layer{i}.')}) for i in range(1, 5))
    depth = DEPTHS.get((blocks, 'layer1.0.conv3.weight' in sd))
    if depth is None:
        raise UserError(f'{path}: its backbone has {blocks} blocks per stage, not a ResNet-18/34/50/101/152')
    return depth


def split_network(net, path):
    """{'model', 'teacher', 'gc', 'edge'} parts of a published network (keys without 'module.')."""
    parts = {'model': {}, 'teacher': {}, 'gc': {}, 'edge': {}}
    edge_type = edge_head = None
    for k, v in net.items():
        head = k.split('.', 1)[0]
        if head in ('backbone', 'pose2feat', 'position_net', 'rotation_net', 'vposer'):
            parts['model'][k] = v
        elif head == 'smpl_overlap_backbone':
            parts['teacher'][re.sub(r'^smpl_overlap_backbone\.(module\.)?', '', k)] = v
        elif re.match(r'GCBLOCK[1-4]\.', k):
            parts['gc'][f'{k[7]}.{k.split(".", 1)[1]}'] = v
        elif head in EDGE_NETS:
            if edge_head not in (None, head):   # two edge nets (edge_module and edge_module1: both SEE) would
                raise UserError(f'{path}: holds two edge networks, {edge_head} and {head}; a student has one')
            edge_head, edge_type = head, EDGE_NETS[head]
            parts['edge'][re.sub(rf'^{head}\.(module\.)?', '', k)] = v
        elif not k.startswith(DROPPED):
            raise UserError(f'{path}: key {k!r} is not part of a published 3DCrowdNet/SEFD model; is it a snapshot '
                            f'of another codebase?')
    return parts, edge_type


def convert_rotation_net(sd, path):
    """Published RotationNet keys -> ours, through RotationNet's own loader (per-vertex graph layout)."""
    renamed = {}
    for k, v in sd.items():
        for old, new in HEADS.items():
            if k.startswith(old):
                k = new + k[len(old):]
        renamed[k] = v
    if 'hidden2root.bias' not in renamed or 'graph_block.0.fcbn_list.0.0.weight' not in renamed:
        raise UserError(f'{path}: its rotation_net has no root_pose_out / graph_block weights; not a 3DCrowdNet model')
    renamed['hidden2root.bias'] = renamed['hidden2root.bias'] - renamed['hidden2root.bias'].new_tensor(UPRIGHT_6D)
    in_ch = renamed['graph_block.0.fcbn_list.0.0.weight'].shape[1] - 4
    net = RotationNet(num_joints=GRAPH_JOINTS, in_ch=in_ch, pose_out=renamed['hidden2pose.weight'].shape[0])
    try:
        net.load_state_dict(renamed)
    except RuntimeError as e:
        raise UserError(f'{path}: its rotation_net does not have the 3DCrowdNet layout '
                        f'({str(e).splitlines()[1].strip()[:160]})') from e
    return net.state_dict()


def convert_state(parts, path):
    """Our state dict from a published network's model part (and a GC student's blocks)."""
    model = parts['model']
    if not any(k.startswith('position_net.') for k in model):
        raise UserError(f'{path} holds only a backbone (a SimpleBaseline/ImageNet initialisation such as '
                        f"3DCrowdNet's tool/snapshot_0.pth.tar): use it as model.pretrained={path}")
    sd = {k: v for k, v in model.items() if k.split('.', 1)[0] in ('backbone', 'pose2feat', 'position_net')}
    sd.update({f'rotation_net.{k}': v for k, v in convert_rotation_net(_strip('rotation_net.', model), path).items()})
    vposer = _strip('vposer.vposer.', model)
    sd.update({f'vposer.{k}': v for k, v in vposer.items() if k.startswith('bodyprior_dec_')})
    sd.update({f'distill_loss.blocks.{k}': v for k, v in parts['gc'].items()})
    return sd


def infer_config(sd, parts, edge_type, path):
    """(config, what kind of snapshot it is) from the converted weights (see the module docstring)."""
    from main.config import VPOSER_FROM_CHECKPOINT, Config, published_defaults
    cfg = published_defaults(Config())
    cfg.data.crop_convention = 'published'   # its numbers come from the published crops
    cfg.model.backbone = f'resnet{resnet_depth(_strip("backbone.", sd), path)}'
    depth, rem = divmod(sd['position_net.conv.0.weight'].shape[0], GRAPH_JOINTS)
    if rem:
        raise UserError(f'{path}: position_net has {depth * GRAPH_JOINTS + rem} outputs, not 15 joints x depth')
    cfg.model.input_size = 32 * depth
    cfg.model.pose_head = 'vposer' if sd['rotation_net.hidden2pose.weight'].shape[0] == 32 else 'rot6d'
    cfg.model.vposer_ckpt = VPOSER_FROM_CHECKPOINT if 'vposer.bodyprior_dec_fc1.weight' in sd else ''
    if sd['backbone.conv1.weight'].shape[1] == 3:
        return cfg, '3DCrowdNet (baseline)'
    if parts['teacher']:
        cfg.mode, cfg.edge.type = 'student', edge_type or 'canny'
        cfg.distill.loss = 'log_softmax_l1'       # stages 3, 4 weighted 1, 2: the default, as released
        if parts['gc']:
            cfg.distill.loss, cfg.distill.stages = 'gc', sorted({int(k.split('.', 1)[0]) for k in parts['gc']})
            cfg.distill.weights = [1.0] * len(cfg.distill.stages)
        cfg.distill.teacher_ckpt, cfg.distill.init_from_teacher = str(path), False   # it carries its teacher
        return cfg, 'SEFD distilled student'
    if edge_type:
        cfg.mode, cfg.edge.type = 'student', edge_type
        return cfg, f'SEFD edge-only student ({edge_type})'
    cfg.mode, cfg.edge.type = 'teacher', 'smpl_overlap'
    return cfg, ('SEFD teacher (4 channels, no teacher inside; a Canny edge-only student looks the same: pass --cfg '
                 'or mode=student edge.type=canny distill.loss=none for one)')


def convert_published(obj, path):
    """A published snapshot (see the module docstring) -> {'model', 'config', 'epoch', 'published', ['teacher'],
    ['edge_net']}."""
    parts, edge_type = split_network(_unwrap(obj['network']), path)
    sd = convert_state(parts, path)
    cfg, kind = infer_config(sd, parts, edge_type, path)
    out = {'model': sd, 'config': cfg.to_dict(), 'epoch': int(obj.get('epoch', 0)),
           'published': {'path': str(path), 'kind': kind, 'optimizer_dropped': 'optimizer' in obj,
                         # the file does not say which of SEFD's feature losses trained a student without GC blocks
                         'distill_loss_guessed': cfg.mode == 'student' and cfg.distill.loss == 'log_softmax_l1'}}
    if parts['teacher']:
        tcfg = type(cfg)(model=dataclasses.replace(cfg.model))
        tcfg.mode, tcfg.edge.type = 'teacher', 'smpl_overlap'
        out['teacher'] = {'model': parts['teacher'], 'config': tcfg.to_dict()}
    if parts['edge']:   # read by edge.weights once tool/convert/convert_checkpoint.py has written it to its own file
        out['edge_net'] = {'type': edge_type, 'state_dict': parts['edge']}
    log.info(f'{path}: a published {kind} snapshot (epoch {out["epoch"]}), converted: mode={cfg.mode} '
             f'edge.type={cfg.edge.type} model.backbone={cfg.model.backbone} model.input_size={cfg.model.input_size} '
             f'model.pose_head={cfg.model.pose_head}')
    return out
