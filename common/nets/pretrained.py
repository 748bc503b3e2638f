"""Reading pretrained backbone weights: shared by the ResNet and HRNet backbones (and VPoser's loader).

Checkpoints come as bare state dicts or wrapped ({'state_dict': ...}, {'network': ...}, {'model': ...}),
with DataParallel's 'module.' prefix or as whole 3DCrowdNet/SEFD models ('backbone.*'); a 3-channel
stem conv is inflated to RGB + edge channels for teacher and student models.
"""
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from common.errors import UserError
from common.io import load_torch_file
from common.registry import BACKBONES, EDGE_INITS

_WRAPPER_KEYS = ('network', 'state_dict', 'model')
_PREFIXES = ('module.', 'backbone.')


@dataclass
class LoadSummary:
    """What a backbone's `load_pretrained` did; `missing`/`unexpected` deserve a look in the log."""
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    ignored: list = field(default_factory=list)      # classification heads (fc.*, HRNet's head)
    inflated_conv1: bool = False
    source: str = '<state_dict>'

    def __str__(self):
        s = (f'{self.source}: loaded {len(self.loaded)} tensors, {len(self.missing)} missing, '
             f'{len(self.unexpected)} unexpected')
        if self.inflated_conv1:
            s += ', stem conv inflated from 3 input channels'
        if self.missing:
            s += f'; missing e.g. {self.missing[:3]}'
        if self.unexpected:
            s += f'; unexpected e.g. {self.unexpected[:3]}'
        return s


def read_checkpoint(path, what='checkpoint'):
    """A weights file a user names, read weights-only on the CPU (common/io.load_torch_file)."""
    return load_torch_file(path, what)


def unwrap_state_dict(obj, source='<state_dict>'):
    """{'network': sd} / {'state_dict': sd} / {'model': sd} -> sd (nested wrappers too)."""
    while isinstance(obj, Mapping) and not any(torch.is_tensor(v) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            raise UserError(f'{source}: no state dict found (keys {sorted(obj)[:6]}); expected a state dict or '
                            f'a dict with one of {_WRAPPER_KEYS}')
        obj = inner
    if not isinstance(obj, Mapping):
        raise UserError(f'{source}: expected a state dict, got {type(obj).__name__}')
    return obj


def strip_prefixes(sd, prefixes=_PREFIXES):
    """Drop 'module.' (DataParallel/DDP) and keep only 'backbone.*' when the checkpoint is a whole model."""
    sd = {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in sd.items()}
    if 'backbone.' in prefixes and any(k.startswith('backbone.') for k in sd):
        sd = {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
    return sd


def inflate_conv1_weight(w, in_channels, edge_init='published', std=1e-3):
    """[O,3,k,k] RGB filters -> [O,in_channels,k,k]: RGB copied, the extra (edge) channels as model.edge_init says.

    published: N(0, 1e-3), SEFD's: the network starts blind to the edge and must learn to look at it.
    luminance: the sum of the RGB filters, their response to a grey image of the edge's intensity: an edge of 1 acts
    on the pretrained filters as a white line drawn over the image, so the first features already respond to it.
    """
    if edge_init not in EDGE_INITS:
        raise UserError(f'edge_init {edge_init!r} is not one of {EDGE_INITS}')
    n = in_channels - w.shape[1]
    if edge_init == 'luminance':
        extra = w.sum(dim=1, keepdim=True).repeat(1, n, 1, 1)
    else:
        extra = torch.randn(w.shape[0], n, *w.shape[2:], dtype=w.dtype, device=w.device) * std
    return torch.cat([w, extra], dim=1)


def load_backbone_state(model, state_dict, source, name, head_prefixes=(), stem_key='conv1.weight',
                        edge_init='published'):
    """Load `state_dict` (a state dict or a file path) into `model` non-strictly, as ResNet does.

    Keys under `head_prefixes` (a classification head) are reported as ignored; a 3-channel `stem_key`
    is inflated when the model takes more input channels (model.in_channels; edge_init: see EDGE_INITS); any other
    shape mismatch is a one-line UserError naming `name`. Returns a LoadSummary.
    """
    if isinstance(state_dict, (str, os.PathLike)):
        source = source or os.fspath(state_dict)
        state_dict = read_checkpoint(state_dict, 'backbone checkpoint')
    source = source or '<state_dict>'
    sd = strip_prefixes(unwrap_state_dict(state_dict, source))
    summary = LoadSummary(source=source)
    own = model.state_dict()
    to_load = {}
    for k, v in sd.items():
        if k.startswith(tuple(head_prefixes)):
            summary.ignored.append(k)
            continue
        if k not in own:
            summary.unexpected.append(k)
            continue
        if not torch.is_tensor(v):
            raise UserError(f'{source}: entry {k} is not a tensor; is this a backbone checkpoint?')
        want = own[k].shape
        if k == stem_key and v.shape != want:
            if v.dim() == 4 and v.shape[1] == 3 and model.in_channels > 3 and v.shape[0] == want[0] \
                    and v.shape[2:] == want[2:]:
                v = inflate_conv1_weight(v.to(own[k].dtype), model.in_channels, edge_init)
                summary.inflated_conv1 = True
            else:
                raise UserError(f'{source}: {k} has shape {tuple(v.shape)} but {name} expects {tuple(want)} '
                                f'({model.in_channels} input channels); use a checkpoint of the same mode (a '
                                f'4-channel teacher/student checkpoint needs an edge input)')
        elif v.shape != want:
            raise UserError(f'{source}: {k} has shape {tuple(v.shape)} but {name} expects {tuple(want)}; check '
                            f'model.backbone matches the checkpoint')
        to_load[k] = v
    # old checkpoints predate num_batches_tracked; its absence is harmless
    summary.missing = [k for k in own if k not in to_load and not k.endswith('num_batches_tracked')]
    summary.loaded = sorted(to_load)
    model.load_state_dict(to_load, strict=False)
    return summary


def register_backbone(name, make, doc):
    """Register `name` in BACKBONES as build(in_channels=3, pretrained=None): make(in_channels), then the
    optional pretrained state dict or file loaded through the network's own load_pretrained."""
    def build(in_channels=3, pretrained=None):
        net = make(in_channels)
        if pretrained:
            net.load_pretrained(pretrained)
        return net
    build.__name__, build.__doc__ = name, doc
    return BACKBONES.register(name)(build)
