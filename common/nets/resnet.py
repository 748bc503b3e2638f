"""ResNet-18/34/50/101/152 backbones with torchvision's exact state-dict layout (no torchvision needed).

The layout (conv1, bn1, layer1.0.conv1, ..., layerN.0.downsample.0/1) lets torchvision ImageNet weights,
SimpleBaseline pose weights and 3DCrowdNet / SEFD checkpoints load without renaming.

Call convention (3DCrowdNet): `backbone(img)` runs the stem only and returns [B,64,H/4,W/4];
`backbone(feat, skip_early=True)` runs layer1..layer4 on a stem-sized feature and always returns the four
stages (c1, c2, c3, c4) with 256/512/1024/2048 channels (64/128/256/512 for ResNet-18/34) at strides
4/8/16/32 of the image.
"""
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from common.errors import UserError
from common.registry import BACKBONES


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck: the stride sits on the 3x3 conv."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


RESNET_SPECS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}

_WRAPPER_KEYS = ('network', 'state_dict', 'model')
_PREFIXES = ('module.', 'backbone.')


@dataclass
class LoadSummary:
    """What `ResNet.load_pretrained` did; `missing`/`unexpected` deserve a look in the log."""
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    ignored: list = field(default_factory=list)      # fc.* of classification checkpoints
    inflated_conv1: bool = False
    source: str = '<state_dict>'

    def __str__(self):
        s = (f'{self.source}: loaded {len(self.loaded)} tensors, {len(self.missing)} missing, '
             f'{len(self.unexpected)} unexpected')
        if self.inflated_conv1:
            s += ', conv1 inflated from 3 input channels'
        if self.missing:
            s += f'; missing e.g. {self.missing[:3]}'
        if self.unexpected:
            s += f'; unexpected e.g. {self.unexpected[:3]}'
        return s


def read_checkpoint(path, what='checkpoint'):
    """torch.load on CPU with a one-line UserError for a missing or unreadable file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f'{what} file not found: {path} (check the path in your config)')

    def corrupt(e):
        return UserError(f'{what} file {path} is corrupt or not a torch checkpoint ({type(e).__name__}: '
                         f'{str(e).splitlines()[0][:120]}); re-download or re-save it')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as e:  # noqa: BLE001 - any other failure means an unreadable file
        raise corrupt(e) from None
    # Old checkpoints (python2-era SimpleBaseline, numpy scalars) need the full unpickler; it can run
    # code from the file, which is acceptable only because the user named this file in their config.
    try:
        obj = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as e:  # noqa: BLE001
        raise corrupt(e) from None
    warnings.warn(f'{path}: loaded with the full unpickler (not a weights-only checkpoint)')
    return obj


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


def inflate_conv1_weight(w, in_channels, std=1e-3):
    """[O,3,k,k] RGB filters -> [O,in_channels,k,k]: RGB copied, extra channels N(0, std).

    The small init keeps the inflated network's output ~equal to the RGB network's at first.
    """
    extra = torch.randn(w.shape[0], in_channels - w.shape[1], *w.shape[2:], dtype=w.dtype, device=w.device) * std
    return torch.cat([w, extra], dim=1)


class ResNet(nn.Module):
    def __init__(self, depth=50, in_channels=3):
        super().__init__()
        if depth not in RESNET_SPECS:
            raise UserError(f'ResNet depth {depth} is not one of {sorted(RESNET_SPECS)}; fix model.backbone')
        block, layers = RESNET_SPECS[depth]
        self.depth, self.in_channels = depth, in_channels
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.stem_channels = 64
        self.out_channels = tuple(c * block.expansion for c in (64, 128, 256, 512))
        self.init_weights()

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def init_weights(self):
        """The reference's from-scratch init: conv N(0, 0.001), BN (1, 0)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=1e-3)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_early(self, x):
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_stages(self, x):
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return c1, c2, c3, c4

    def forward(self, x, skip_early=False):
        return self.forward_stages(x) if skip_early else self.forward_early(x)

    def load_pretrained(self, state_dict, source=None):
        """Load torchvision / SimpleBaseline / 3DCrowdNet / SEFD weights (a state dict or a file path).

        'module.' and 'backbone.' prefixes are stripped (a whole-model checkpoint contributes its backbone
        only), fc.* is ignored, and a 3-channel conv1 is inflated when this model has more input channels.
        Returns a LoadSummary; a shape mismatch (other than that inflation) is a UserError.
        """
        if isinstance(state_dict, (str, os.PathLike)):
            source = source or os.fspath(state_dict)
            state_dict = read_checkpoint(state_dict, 'backbone checkpoint')
        source = source or '<state_dict>'
        sd = strip_prefixes(unwrap_state_dict(state_dict, source))
        summary = LoadSummary(source=source)
        own = self.state_dict()
        to_load = {}
        for k, v in sd.items():
            if k.startswith('fc.'):
                summary.ignored.append(k)
                continue
            if k not in own:
                summary.unexpected.append(k)
                continue
            if not torch.is_tensor(v):
                raise UserError(f'{source}: entry {k} is not a tensor; is this a backbone checkpoint?')
            if k == 'conv1.weight' and v.shape != own[k].shape:
                if v.dim() == 4 and v.shape[1] == 3 and v.shape[0] == own[k].shape[0] and self.in_channels > 3 \
                        and v.shape[2:] == own[k].shape[2:]:
                    v = inflate_conv1_weight(v.to(own[k].dtype), self.in_channels)
                    summary.inflated_conv1 = True
                else:
                    raise UserError(f'{source}: conv1.weight has shape {tuple(v.shape)} but the model expects '
                                    f'{tuple(own[k].shape)} ({self.in_channels} input channels); use a checkpoint '
                                    f'of the same mode (a 4-channel teacher/student checkpoint needs an edge input)')
            elif v.shape != own[k].shape:
                raise UserError(f'{source}: {k} has shape {tuple(v.shape)} but ResNet-{self.depth} expects '
                                f'{tuple(own[k].shape)}; check model.backbone matches the checkpoint')
            to_load[k] = v
        # Old checkpoints predate num_batches_tracked; its absence is harmless.
        summary.missing = [k for k in own if k not in to_load and not k.endswith('num_batches_tracked')]
        summary.loaded = sorted(to_load)
        self.load_state_dict(to_load, strict=False)
        return summary


def _factory(depth):
    def build(in_channels=3, pretrained=None):
        net = ResNet(depth, in_channels)
        if pretrained:
            net.load_pretrained(pretrained)
        return net
    build.__name__ = f'resnet{depth}'
    build.__doc__ = f'ResNet-{depth} (torchvision layout); `pretrained` = optional state dict or file path.'
    return build


resnet18 = BACKBONES.register('resnet18')(_factory(18))
resnet34 = BACKBONES.register('resnet34')(_factory(34))
resnet50 = BACKBONES.register('resnet50')(_factory(50))
resnet101 = BACKBONES.register('resnet101')(_factory(101))
resnet152 = BACKBONES.register('resnet152')(_factory(152))
