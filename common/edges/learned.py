"""What the learned edge plug-ins (rcf, hed, pidinet, see) share: input normalisation, where their weights
come from, and the checks that a weights file is the format expected.

Each network sees the input it was trained on (the official weights' conventions). SEFD fed two of them
wrong (SEFD's released edge code), which we do not reproduce:

| net     | here (official)                                   | SEFD reference                          |
|---------|---------------------------------------------------|-----------------------------------------|
| RCF     | BGR, 0..255, minus the Caffe BGR means            | RGB, 0..255, minus the BGR means        |
| HED     | BGR, 0..255, minus the Caffe BGR means            | RGB, 0..255, minus the BGR means        |
| PiDiNet | RGB, ImageNet mean/std normalised                 | RGB in [0, 1], not normalised           |
| SEE     | RGB in [0, 1] (SEFD's own net; no official other) | the same                                |

Weights: `edge.weights` (official file, relative to the repo root or absolute); when empty, the file that
`python tool/experiments/train_edge.py --edge <type>` writes, output/edge_weights/<type>.pth.
"""
from collections.abc import Mapping
from pathlib import Path
from typing import List, NamedTuple, Optional

import torch

from common.edges.base import EdgeEstimator
from common.errors import UserError
from common.nets.pretrained import read_checkpoint
from common.paths import ROOT, resolve_path

# Caffe's BGR pixel means (HED / RCF training on BSDS500), 0..255 scale
CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_WEIGHTS_DIR = 'output/edge_weights'


def caffe_bgr(img):
    """[B,3,H,W] RGB in [0, 1] -> BGR on the 0..255 scale minus the Caffe BGR means."""
    mean = img.new_tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)
    return img.flip(1) * 255.0 - mean


def imagenet(img):
    """[B,3,H,W] RGB in [0, 1] -> (x - ImageNet mean) / ImageNet std, per RGB channel."""
    return (img - img.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / img.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)


def default_weights_path(kind):
    return ROOT / DEFAULT_WEIGHTS_DIR / f'{kind}.pth'


def resolve_weights(edge_cfg, kind, official):
    """The weights file of edge type `kind`: edge.weights, else the default file of tool/experiments/train_edge.py."""
    if edge_cfg.weights:
        return resolve_path(edge_cfg.weights)
    path = default_weights_path(kind)
    if path.is_file():
        return path
    raise UserError(f'edge.type={kind} needs weights: set edge.weights to the official {official} file, or train '
                    f'them with `python tool/experiments/train_edge.py --edge {kind}` (writes {path})')


# ------------------------------------------------------------------------------------------ formats

# a key that only one known layout has -> what to call such a file
_SIGNATURES = (
    ('moduleVggOne.0.weight', 'pytorch-hed HED weights (module* keys)'),
    ('netVggOne.0.weight', 'pytorch-hed HED weights (net* keys)'),
    ('score_final.weight', 'RCF weights (meteorshowers layout)'),
    ('score_fuse.weight', 'RCF weights (yun-liu layout)'),
    ('init_block.weight', 'PiDiNet weights'),
    ('outc_1.conv.weight', 'SEE two-head UNet weights'),
    ('outc.conv.weight', 'single-head UNet weights (SEFD UNet v1, not SEE)'),
    ('pose2feat.conv.0.weight', 'a 3DCrowdNet/SEFD model'),   # after SEE, whose file carries one too
    ('transition1.0.0.weight', 'HRNet weights'),
    ('layer1.0.conv1.weight', 'ResNet weights'),
)


def tensor_keys(obj):
    return [k for k, v in obj.items() if torch.is_tensor(v)] if isinstance(obj, Mapping) else []


def describe_checkpoint(obj):
    """A short phrase saying what a loaded checkpoint object looks like (for one-line errors)."""
    if not isinstance(obj, Mapping):
        return f'a {type(obj).__name__}, not a dict of tensors'
    wrapper = ''
    inner = obj
    if not tensor_keys(obj):
        for k in ('state_dict', 'model', 'network'):
            if isinstance(obj.get(k), Mapping):
                wrapper, inner = f"a dict with '{k}' holding ", obj[k]
                break
        else:
            return f'a dict without tensors (keys {sorted(map(str, obj))[:5]})'
    keys = tensor_keys(inner)
    bare = {k[len('module.'):] if k.startswith('module.') else k for k in keys}
    what = next((name for sig, name in _SIGNATURES if sig in bare or any(k.endswith('.' + sig) for k in bare)),
                'unrecognised weights')
    prefix = ", 'module.' prefixed" if keys and all(k.startswith('module.') for k in keys) else ''
    return f'{wrapper}{what} ({len(keys)} tensors{prefix}, e.g. {keys[:2]})'


def state_dict_of(obj, source, expected):
    """The state dict of a checkpoint object: under 'state_dict' (the official RCF and PiDiNet files) or the
    object itself (HED, SEE); both are accepted, re-saved files often differ in just that. Anything else is
    a one-line UserError."""
    if isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        obj = obj['state_dict']
    if not isinstance(obj, Mapping) or not tensor_keys(obj):
        raise UserError(f'{source}: expected {expected}; found {describe_checkpoint(obj)}')
    return dict(obj)


def load_exact(module, sd, source, expected, found_obj=None):
    """load_state_dict(strict) with one line naming the expected format and what the file holds."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in sd if k not in own]
    bad = [k for k in sd if k in own and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        detail = '; '.join(s for s in (
            f'{len(missing)} missing (e.g. {missing[0]})' if missing else '',
            f'{len(unexpected)} unexpected (e.g. {unexpected[0]})' if unexpected else '',
            f'{bad[0]} is {tuple(sd[bad[0]].shape)}, expected {tuple(own[bad[0]].shape)}' if bad else '') if s)
        found = describe_checkpoint(found_obj if found_obj is not None else sd)
        raise UserError(f'{source}: expected {expected}; found {found} ({detail})')
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=False)


# ------------------------------------------------------------------------------------------ base class

class EdgeOutputs(NamedTuple):
    edges: List[torch.Tensor]            # logits [B,1,H,W]: side outputs..., the fused map last
    mask: Optional[torch.Tensor] = None  # SEE's person-segmentation logits [B,1,H,W]


class LearnedEdge(EdgeEstimator):
    """A learned edge network as a student edge: `edge(img)` = sigmoid of its fused output.

    Subclasses set `kind` and `official` (the official weights file, for messages), build the network as
    `self.net`, and implement `preprocess` (the network's input normalisation), `load_weights(obj, source)` and
    `official_checkpoint(epoch)` (the object to torch.save); `outputs` (the trainable path, used by
    tool/experiments/train_edge.py) takes `self.net`'s list of side outputs unless overridden.
    """
    kind = ''
    official = ''

    def preprocess(self, img):
        raise NotImplementedError

    def net_input(self, img):
        """The normalised input, channels-last: oneDNN runs these convs 1.3-2x faster so (measured on CPU)."""
        return self.preprocess(img).contiguous(memory_format=torch.channels_last)

    def outputs(self, img) -> EdgeOutputs:
        """img [B,3,H,W] RGB in [0, 1] -> logits (differentiable; no normalisation needed by the caller)."""
        return EdgeOutputs(self.net(self.net_input(img)))

    def edge(self, img):
        return torch.sigmoid(self.outputs(img).edges[-1])

    def load_weights(self, obj, source='<state_dict>'):
        raise NotImplementedError

    def official_checkpoint(self, epoch=0):
        raise NotImplementedError

    def load_file(self, path):
        path = Path(path)
        return self.load_weights(read_checkpoint(path, f'{self.kind} weights'), str(path))

    @classmethod
    def from_config(cls, edge_cfg, **kwargs):
        net = cls(**kwargs)
        net.load_file(resolve_weights(edge_cfg, cls.kind, cls.official))
        return net.eval()
