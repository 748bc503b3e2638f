"""SEE, SEFD's structural-edge estimator ("edge_module"): a UNet with one encoder and two decoders, one
predicting the people's structural edges, the other their segmentation mask (SEFD's `UNet(n_channels=3,
n_classes=2, bilinear=False, model_version='2')`).

Encoder: DoubleConv 3->64, then 4 x (max-pool 2, DoubleConv) to 128/256/512/1024 (DoubleConv = 2 x (3x3 conv
without bias, BN, ReLU)). Each decoder: 4 x (2x2 stride-2 transposed conv halving the channels, concat
with the encoder feature of that scale, DoubleConv), then a 1x1 conv to one logit map. The student's edge
is sigmoid(edge logits).

Weights: a bare UNet state dict (inc.*, down1-4.*, up{1-4}_1.*, up{1-4}_2.*, outc_1.*, outc_2.*). SEFD's UNet
also carries an unused Pose2Feat (pose2feat.*): ignored on load, written as placeholders on save, so files
from tool/experiments/train_edge.py load strictly into SEFD's class as well. SEFD's training code for it is not public;
tool/experiments/train_edge.py trains it on the synthetic set's rendered edges and masks.
Input: RGB in [0, 1] (SEFD's convention for this network).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.edges.learned import EdgeOutputs, LearnedEdge, load_exact, state_dict_of
from common.nets.pretrained import strip_prefixes
from common.registry import EDGES

ENCODER = (64, 128, 256, 512, 1024)
EXPECTED = "SEFD's SEE UNet state dict (keys inc.double_conv.0.weight, down1..4, up1_1..up4_2, outc_1, outc_2)"
POSE2FEAT_IN = 64 + 30   # SEFD's unused Pose2Feat(30): conv 94 -> 64 + BN


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x, skip):
        x = self.up(x)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        if dy or dx:   # odd sizes: pad the upsampled map to the skip's size, centred
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.conv(x)


class SEENet(nn.Module):
    """The network (SEFD's attribute names). forward(x in [0,1] RGB) -> (edge logits, mask logits)."""

    def __init__(self):
        super().__init__()
        c = ENCODER
        self.inc = DoubleConv(3, c[0])
        for i in range(1, 5):
            setattr(self, f'down{i}', Down(c[i - 1], c[i]))
        for head in (1, 2):
            for i in range(1, 5):
                setattr(self, f'up{i}_{head}', Up(c[5 - i], c[4 - i]))
            setattr(self, f'outc_{head}', OutConv(c[0], 1))

    def decode(self, feats, head):
        x = feats[-1]
        for i in range(1, 5):
            x = getattr(self, f'up{i}_{head}')(x, feats[4 - i])
        return getattr(self, f'outc_{head}')(x)

    def encode(self, x):
        feats = [self.inc(x)]
        for i in range(1, 5):
            feats.append(getattr(self, f'down{i}')(feats[-1]))
        return feats

    def forward(self, x):
        feats = self.encode(x)
        return self.decode(feats, 1), self.decode(feats, 2)


def pose2feat_placeholders():
    """The tensors of SEFD's unused Pose2Feat: zero conv, identity BN."""
    return {'pose2feat.conv.0.weight': torch.zeros(64, POSE2FEAT_IN, 3, 3), 'pose2feat.conv.0.bias': torch.zeros(64),
            'pose2feat.conv.1.weight': torch.ones(64), 'pose2feat.conv.1.bias': torch.zeros(64),
            'pose2feat.conv.1.running_mean': torch.zeros(64), 'pose2feat.conv.1.running_var': torch.ones(64),
            'pose2feat.conv.1.num_batches_tracked': torch.tensor(0)}


class SEEEdge(LearnedEdge):
    kind = 'see'
    official = "SEFD's SEE edge_module checkpoint (UNet state dict)"

    def __init__(self):
        super().__init__()
        self.net = SEENet()

    def preprocess(self, img):
        return img

    def outputs(self, img):
        edge, mask = self.net(self.net_input(img))
        return EdgeOutputs([edge], mask)

    def edge(self, img):
        # both decoders are needed only in training; the student takes the edge head alone
        return torch.sigmoid(self.net.decode(self.net.encode(self.net_input(img)), 1))

    def load_weights(self, obj, source='<state_dict>'):
        sd = state_dict_of(obj, source, EXPECTED)
        sd = strip_prefixes(sd, ('module.',))
        sd = {k: v for k, v in sd.items() if not k.startswith('pose2feat.')}
        load_exact(self.net, sd, source, EXPECTED, obj)
        return self

    def official_checkpoint(self, epoch=0):
        return {**pose2feat_placeholders(), **self.net.state_dict()}


@EDGES.register('see')
def build_see(edge_cfg):
    return SEEEdge.from_config(edge_cfg)
