"""HED (Xie & Tu 2015) as a student edge, in the layout of sniklaus/pytorch-hed (SEFD's HED).

VGG16 conv1-conv5 (no pool5), a 1x1 score conv on the last conv of each block (five side outputs),
bilinear upsampling to the input size, and a 1x1 fusion of the five; the edge map is sigmoid(fusion).

Weights: pytorch-hed's `network-bsds500.pytorch`, a bare state dict whose keys start with `module`
(moduleVggOne.0.weight, ..., moduleCombine.0.weight); its own code renames `module` -> `net` on load. Both
namings are accepted; tool/experiments/train_edge.py saves the file's `module` naming.
Input: BGR, 0..255, minus the Caffe BGR means (SEFD subtracted those means from RGB: see learned.py).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.edges.learned import LearnedEdge, caffe_bgr, load_exact, state_dict_of
from common.nets.pretrained import strip_prefixes
from common.registry import EDGES

# VGG16 blocks: (attribute suffix, input channels, output channels, convs)
BLOCKS = (('One', 3, 64, 2), ('Two', 64, 128, 2), ('Thr', 128, 256, 3), ('Fou', 256, 512, 3), ('Fiv', 512, 512, 3))
EXPECTED = ("pytorch-hed's network-bsds500.pytorch (a state dict with keys moduleVggOne.0.weight ... "
            "moduleCombine.0.bias)")


def _vgg_block(cin, cout, convs, pool):
    layers = [nn.MaxPool2d(2, 2)] if pool else []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, 1, 1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class HED(nn.Module):
    """The network, with pytorch-hed's attribute names (netVggOne ... netCombine); input already normalised.
    forward -> [five side-output logits, fused logits], each [B,1,H,W]."""

    def __init__(self):
        super().__init__()
        for i, (name, cin, cout, convs) in enumerate(BLOCKS):
            setattr(self, f'netVgg{name}', _vgg_block(cin, cout, convs, pool=i > 0))
            setattr(self, f'netScore{name}', nn.Conv2d(cout, 1, 1))
        self.netCombine = nn.Sequential(nn.Conv2d(5, 1, 1))   # the official Sigmoid (index 1) has no weights

    def init_weights(self):
        """From-scratch init (train_edge.py): He-normal VGG convs, the first one scaled down for its 0..255
        input, N(0, 0.01) scores, fusion 0.2 (an average of the five side outputs)."""
        for name, m in self.named_modules():
            if not isinstance(m, nn.Conv2d):
                continue
            if name.startswith('netVgg'):
                nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                if name == 'netVggOne.0':
                    m.weight.data /= 64.0   # ~ the std of Caffe-normalised pixels
            elif name.startswith('netCombine'):
                nn.init.constant_(m.weight, 0.2)
            else:
                nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        size = x.shape[2:]
        sides = []
        for name, *_ in BLOCKS:
            x = getattr(self, f'netVgg{name}')(x)
            s = getattr(self, f'netScore{name}')(x)
            sides.append(F.interpolate(s, size=size, mode='bilinear', align_corners=False))
        return sides + [self.netCombine(torch.cat(sides, 1))]


def to_official(sd):
    return {'module' + k[len('net'):]: v for k, v in sd.items()}


class HEDEdge(LearnedEdge):
    kind = 'hed'
    official = 'pytorch-hed network-bsds500.pytorch'

    def __init__(self):
        super().__init__()
        self.net = HED()

    def preprocess(self, img):
        return caffe_bgr(img)

    def load_weights(self, obj, source='<state_dict>'):
        sd = state_dict_of(obj, source, EXPECTED)
        sd = strip_prefixes(sd, ('module.',))  # DataParallel
        sd = {('net' + k[len('module'):] if k.startswith('module') else k): v for k, v in sd.items()}
        load_exact(self.net, sd, source, EXPECTED, obj)
        return self

    def official_checkpoint(self, epoch=0):
        return to_official(self.net.state_dict())


@EDGES.register('hed')
def build_hed(edge_cfg):
    return HEDEdge.from_config(edge_cfg)
