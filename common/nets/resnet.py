"""ResNet-18/34/50/101/152 backbones with torchvision's exact state-dict layout (no torchvision needed).

The layout (conv1, bn1, layer1.0.conv1, ..., layerN.0.downsample.0/1) lets torchvision ImageNet weights,
SimpleBaseline pose weights and 3DCrowdNet / SEFD checkpoints load without renaming.

Call convention (3DCrowdNet): `backbone(img)` runs the stem only and returns [B,64,H/4,W/4];
`backbone(feat, skip_early=True)` runs layer1..layer4 on a stem-sized feature and always returns the four
stages (c1, c2, c3, c4) with 256/512/1024/2048 channels (64/128/256/512 for ResNet-18/34) at strides
4/8/16/32 of the image.
"""

from pathlib import Path

import torch.nn as nn

from common.errors import UserError
from common.nets.pretrained import load_backbone_state, register_backbone


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


def he_init(net):
    """From-scratch init of ResNet and HRNet (torchvision's, cls_hrnet.py's): conv He-normal (fan_out, relu),
    BN (1, 0)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    CONV_BN = (('conv1', 'bn1'), ('conv2', 'bn2'))   # bn(conv(x)) pairs (common/nets/frozen.py folds them)
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
    CONV_BN = (('conv1', 'bn1'), ('conv2', 'bn2'), ('conv3', 'bn3'))
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

class ResNet(nn.Module):
    CONV_BN = (('conv1', 'bn1'),)
    stem_key = 'conv1.weight'

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
        """From-scratch init (torchvision's): conv He-normal (fan_out), BN (1, 0). The reference's conv N(0, 0.001)
        was only ever overwritten by ImageNet weights there; trained from scratch under Adam its tiny weights make
        every step a ~10% relative change of each conv (BatchNorm makes the conv's scale irrelevant to its output,
        not to Adam's step)."""
        he_init(self)

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

    def load_pretrained(self, state_dict, source=None, edge_init='published'):
        """Load torchvision / SimpleBaseline / 3DCrowdNet / SEFD weights (a state dict, a file path, or 'imagenet':
        torchvision's file in the torch hub cache, where torchvision keeps what it downloads).

        'module.' and 'backbone.' prefixes are stripped (a whole-model checkpoint contributes its backbone
        only), fc.* is ignored, and a 3-channel conv1 is inflated when this model has more input channels.
        Returns a LoadSummary; a shape mismatch (other than that inflation) is a UserError.
        """
        if isinstance(state_dict, str) and state_dict == 'imagenet':
            state_dict = torchvision_weights(self.depth)
        return load_backbone_state(self, state_dict, source, f'ResNet-{self.depth}', ('fc.',), self.stem_key,
                                   edge_init)


def torchvision_weights(depth):
    """torchvision's ImageNet file of ResNet-`depth` (resnet50-<hash>.pth) in the torch hub cache."""
    import torch
    folder = Path(torch.hub.get_dir()) / 'checkpoints'
    found = sorted(folder.glob(f'resnet{depth}-*.pth'))
    if not found:
        raise UserError(f'no ImageNet weights of ResNet-{depth} on this machine: put torchvision\'s file '
                        f'(resnet{depth}-<hash>.pth) in {folder}, or give its path as model.pretrained, or '
                        f'model.pretrained=\'\' to train from scratch')
    return str(found[-1])


def _resnet(depth):
    return register_backbone(f'resnet{depth}', lambda in_channels: ResNet(depth, in_channels),
                             f'ResNet-{depth} (torchvision layout); `pretrained` = optional state dict or file path.')


resnet18, resnet34, resnet50, resnet101, resnet152 = (_resnet(d) for d in (18, 34, 50, 101, 152))
