"""HRNet-W32 / W48 backbones in the key layout of the official HRNet ImageNet checkpoints
(HRNet/HRNet-Image-Classification, cls_hrnet.py: conv1, bn1, conv2, bn2, layer1, transition1..3, stage2..4).

Call convention (the same as ResNet, for 3DCrowdNet's Pose2Feat):
- `backbone(img)` runs the stem only (two 3x3 stride-2 convs) -> [B,64,H/4,W/4];
- `backbone(feat, skip_early=True)` runs layer1, the transitions and stages 2-4 on a stem-sized feature and
  returns the four branch outputs of the last stage (c1..c4) at strides 4/8/16/32 of the image, with
  (C, 2C, 4C, 8C) channels: (32, 64, 128, 256) for W32, (48, 96, 192, 384) for W48. The heads use c4.
The ImageNet classification head (incre_modules, downsamp_modules, final_layer, classifier) is not built:
its keys are reported as ignored when an official checkpoint is loaded.
"""
import torch.nn as nn

from common.errors import UserError
from common.nets.pretrained import load_backbone_state, register_backbone
from common.nets.resnet import BasicBlock, Bottleneck, he_init

HEAD_PREFIXES = ('incre_modules.', 'downsamp_modules.', 'final_layer.', 'classifier.')
WIDTHS = (32, 48)
# (modules, branches) of stages 2-4 in both official W32 and W48 configs; 4 BasicBlocks per branch
STAGES = ((1, 2), (4, 3), (3, 4))
BLOCKS_PER_BRANCH = 4


def _conv_bn(cin, cout, stride, relu=True, kernel=3):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks, then every branch receives the sum of all branches resampled to
    its resolution (1x1 conv + nearest upsampling from lower resolutions, strided 3x3 convs from higher)."""

    def __init__(self, channels):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c, c) for _ in range(BLOCKS_PER_BRANCH)]) for c in channels)
        self.fuse_layers = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False),
                                             nn.BatchNorm2d(channels[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode='nearest')))
                elif j == i:
                    row.append(None)   # identity; None keeps the official indices (no keys)
                else:  # i - j stride-2 convs; ReLU after all but the last
                    steps = [_conv_bn(channels[j], channels[j], 2) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(channels[j], channels[i], 2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = None
            for j, f in enumerate(row):   # summed in the official order (j = 0, 1, ...)
                t = xs[j] if f is None else f(xs[j])
                y = t if y is None else y + t
            out.append(self.relu(y))
        return out


def _transition(pre, cur):
    """Official transition layer: adapt existing branches whose width changes, add new branches from the
    lowest-resolution one by stride-2 convs."""
    layers = nn.ModuleList()
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(_conv_bn(pre[i], c, 1) if pre[i] != c else None)
        else:
            steps = [_conv_bn(pre[-1], c if k == i - len(pre) else pre[-1], 2) for k in range(i + 1 - len(pre))]
            layers.append(nn.Sequential(*steps))
    return layers


class HRNet(nn.Module):
    CONV_BN = (('conv1', 'bn1'), ('conv2', 'bn2'))   # the stem (common/nets/frozen.py folds them)
    stem_key = 'conv1.weight'

    def __init__(self, width=32, in_channels=3):
        super().__init__()
        if width not in WIDTHS:
            raise UserError(f'HRNet width {width} is not one of {WIDTHS}; fix model.backbone (hrnet_w32 | hrnet_w48)')
        self.width, self.in_channels = width, in_channels
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        down = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
        self.layer1 = nn.Sequential(Bottleneck(64, 64, 1, down), *[Bottleneck(256, 64) for _ in range(3)])
        pre = [256]
        for s, (modules, branches) in enumerate(STAGES, start=2):
            cur = [width * 2 ** b for b in range(branches)]
            setattr(self, f'transition{s - 1}', _transition(pre, cur))
            setattr(self, f'stage{s}', nn.Sequential(*[HighResolutionModule(cur) for _ in range(modules)]))
            pre = cur
        self.stem_channels = 64
        self.out_channels = tuple(pre)
        self.init_weights()

    def init_weights(self):
        """HRNet's from-scratch init (cls_hrnet.py): conv kaiming normal (fan_out, relu), BN (1, 0)."""
        he_init(self)

    def forward_early(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))

    def forward_stages(self, x):
        xs = [self.layer1(x)]
        for s in (2, 3, 4):
            trans = getattr(self, f'transition{s - 1}')
            # new branches grow from the lowest-resolution output of the previous stage
            xs = [t(xs[min(i, len(xs) - 1)]) if t is not None else xs[i] for i, t in enumerate(trans)]
            xs = getattr(self, f'stage{s}')(xs)
        return tuple(xs)

    def forward(self, x, skip_early=False):
        return self.forward_stages(x) if skip_early else self.forward_early(x)

    def load_pretrained(self, state_dict, source=None, edge_init='published'):
        """Load official HRNet ImageNet weights (or a 3DCrowdNet/SEFD-style whole model's 'backbone.*'):
        the classification head is ignored, a 3-channel conv1 is inflated for RGB + edge input.
        Returns a LoadSummary; a shape mismatch is a UserError."""
        if isinstance(state_dict, str) and state_dict == 'imagenet':
            raise UserError(f'no ImageNet weights of HRNet-W{self.width} ship with a package: give the official '
                            f'file (hrnetv2_w{self.width}_imagenet_pretrained.pth) as model.pretrained')
        return load_backbone_state(self, state_dict, source, f'HRNet-W{self.width}', HEAD_PREFIXES, self.stem_key,
                                   edge_init)


def _hrnet(width):
    return register_backbone(f'hrnet_w{width}', lambda in_channels: HRNet(width, in_channels),
                             f'HRNet-W{width} (official ImageNet checkpoint layout); `pretrained` = state dict or path.')


hrnet_w32, hrnet_w48 = _hrnet(32), _hrnet(48)
