"""RCF (Liu et al. 2017, Richer Convolutional Features) as a student edge, in the layout of the PyTorch RCF
that SEFD uses (meteorshowers/RCF-pytorch; checkpoints {'epoch', 'state_dict', 'optimizer'}).

VGG16 with pool4 at stride 1 and dilated (2) conv5, so conv4/conv5 both sit at stride 8. Every conv is
reduced to 21 channels by a 1x1 conv (conv*_down); the reductions of a block are summed and scored by a
1x1 conv (score_dsn1..5), upsampled by fixed bilinear deconvolutions (kernels 4/8/16/32, strides 2/4/8/8),
centre-cropped to the input, and fused by a 1x1 conv (score_final). Six maps; the edge is sigmoid(fused).
The official release by the RCF authors (yun-liu/RCF-PyTorch, fusion named score_fuse, deconv5 kernel 16
and fixed crop offsets) is accepted too: its weights load and its upsampling is used.

Input: BGR, 0..255, minus the Caffe BGR means (SEFD subtracted those means from RGB: see learned.py).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.edges.learned import LearnedEdge, caffe_bgr, load_exact, state_dict_of
from common.nets.pretrained import strip_prefixes
from common.registry import EDGES

# (block, convs, in channels, out channels)
VGG = ((1, 2, 3, 64), (2, 2, 64, 128), (3, 3, 128, 256), (4, 3, 256, 512), (5, 3, 512, 512))
EXPECTED = ("an RCF checkpoint (a dict with 'state_dict': conv1_1.weight ... conv5_3_down.bias, score_dsn1..5, "
            "score_final)")
# side outputs 2..5: (deconv kernel, stride) and the crop offset of the yun-liu release (None: centre crop)
UPSAMPLE = {'meteorshowers': ((4, 2), (8, 4), (16, 8), (32, 8)),
            'yun-liu': ((4, 2), (8, 4), (16, 8), (16, 8))}
YUNLIU_OFFSETS = (1, 2, 4, 0)


def bilinear_kernel(size):
    """[1,1,size,size] kernel with which a stride-s transposed conv (size = 2s) interpolates bilinearly (FCN)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    r = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    return (r[:, None] * r[None, :])[None, None]


def centre_crop(x, h, w):
    """The reference's crop: offsets int(round((size - target) / 2)) with Python's rounding."""
    y0 = int(round((x.shape[2] - h) / 2.0))
    x0 = int(round((x.shape[3] - w) / 2.0))
    return x[:, :, y0:y0 + h, x0:x0 + w]


class RCF(nn.Module):
    """The network (official attribute names); input already normalised. forward -> 6 logit maps [B,1,H,W]."""

    def __init__(self, variant='meteorshowers'):
        super().__init__()
        for b, n, cin, cout in VGG:
            for i in range(1, n + 1):
                dil = 2 if b == 5 else 1
                setattr(self, f'conv{b}_{i}', nn.Conv2d(cin if i == 1 else cout, cout, 3, padding=dil, dilation=dil))
                setattr(self, f'conv{b}_{i}_down', nn.Conv2d(cout, 21, 1))
            setattr(self, f'score_dsn{b}', nn.Conv2d(21, 1, 1))
        self.score_final = nn.Conv2d(5, 1, 1)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.pool4 = nn.MaxPool2d(2, stride=1, ceil_mode=True)
        self.variant = variant
        for k in sorted({k for k, _ in UPSAMPLE['meteorshowers'] + UPSAMPLE['yun-liu']}):
            # constants, not weights: outside the state dict as in the official code
            self.register_buffer(f'deconv{k}', bilinear_kernel(k), persistent=False)

    def init_weights(self):
        """From-scratch init (train_edge.py): He-normal VGG convs, the first one scaled down for its 0..255 input,
        N(0, 0.01) reductions and scores, fusion 0.2 (the RCF authors' choice)."""
        for name, m in self.named_children():
            if not isinstance(m, nn.Conv2d):
                continue
            if name == 'score_final':
                nn.init.constant_(m.weight, 0.2)
            elif name.endswith('_down') or name.startswith('score'):
                nn.init.normal_(m.weight, std=0.01)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                if name == 'conv1_1':
                    m.weight.data /= 64.0   # ~ the std of Caffe-normalised pixels
            nn.init.zeros_(m.bias)

    def forward(self, x):
        h, w = x.shape[2:]
        scores = []
        for b, n, _, _ in VGG:
            if b > 1:
                x = self.pool4(x) if b == 5 else self.pool(x)
            down = 0
            for i in range(1, n + 1):
                x = F.relu(getattr(self, f'conv{b}_{i}')(x))
                down = down + getattr(self, f'conv{b}_{i}_down')(x)
            scores.append(getattr(self, f'score_dsn{b}')(down))
        outs = [centre_crop(scores[0], h, w)]
        for k, (s, (kernel, stride)) in enumerate(zip(scores[1:], UPSAMPLE[self.variant])):
            up = F.conv_transpose2d(s, getattr(self, f'deconv{kernel}').to(s.dtype), stride=stride)
            if self.variant == 'yun-liu':
                o = YUNLIU_OFFSETS[k]
                outs.append(up[:, :, o:o + h, o:o + w])
            else:
                outs.append(centre_crop(up, h, w))
        return outs + [self.score_final(torch.cat(outs, 1))]


class RCFEdge(LearnedEdge):
    kind = 'rcf'
    official = 'RCF checkpoint (.pth with state_dict)'

    def __init__(self, variant='meteorshowers'):
        super().__init__()
        self.net = RCF(variant)

    def preprocess(self, img):
        return caffe_bgr(img)

    def load_weights(self, obj, source='<state_dict>'):
        sd = state_dict_of(obj, source, EXPECTED)
        sd = strip_prefixes(sd, ('module.',))
        if 'score_fuse.weight' in sd:   # the RCF authors' release: same weights, its own upsampling
            sd = {k.replace('score_fuse.', 'score_final.', 1): v for k, v in sd.items()}
            self.net.variant = 'yun-liu'
        load_exact(self.net, sd, source, EXPECTED, obj)
        return self

    def official_checkpoint(self, epoch=0):
        if self.net.variant != 'meteorshowers':
            raise ValueError('only the meteorshowers layout (score_final) is saved')
        return {'epoch': int(epoch), 'state_dict': self.net.state_dict()}


@EDGES.register('rcf')
def build_rcf(edge_cfg):
    return RCFEdge.from_config(edge_cfg)
