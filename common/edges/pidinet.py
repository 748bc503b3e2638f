"""PiDiNet (Su et al. 2021, pixel difference networks) as a student edge: the `carv4` configuration with 60
channels, compact dilation modules (dil 24) and spatial attention (`--config carv4 --sa --dil`), the model
of hellozhuo/pidinet's table5_pidinet.pth that SEFD uses.

Pixel-difference convolutions (PDC) convolve differences of pixels instead of pixels:
- cd (central): sum_k w_k (x_k - x_centre);
- ad (angular): sum_k w_k (x_k - x_k'), k' the next neighbour clockwise around the 3x3 ring;
- rd (radial): sum_k w_k (x_outer(k) - x_inner(k)) over the 5x5 ring and the 3x3 ring (w_0 unused);
- cv: a plain 3x3 conv.
carv4 repeats (cd, ad, rd, cv) over its 16 layers (init_block, then blocks 1_1..4_4). Each is linear in x,
so it equals a vanilla conv with a transformed kernel (3x3; 5x5 for rd): `convert_pdc`. Training uses the
PDC form (the kernels it can express differ); inference always runs the converted vanilla convs.

Weights: hellozhuo/pidinet checkpoints {'epoch', 'state_dict'} saved from DataParallel ('module.' prefix),
in the PDC form (converted at load) or already converted (rd kernels 5x5); with or without the prefix.
Input: RGB normalised with the ImageNet mean/std, as PiDiNet was trained (SEFD fed [0, 1] RGB: learned.py).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.edges.learned import LearnedEdge, imagenet, load_exact, state_dict_of
from common.errors import UserError
from common.nets.pretrained import strip_prefixes
from common.registry import EDGES

CARV4 = ('cd', 'ad', 'rd', 'cv') * 4
LAYERS = ('init_block', 'block1_1', 'block1_2', 'block1_3', 'block2_1', 'block2_2', 'block2_3', 'block2_4',
          'block3_1', 'block3_2', 'block3_3', 'block3_4', 'block4_1', 'block4_2', 'block4_3', 'block4_4')
EXPECTED = ("a PiDiNet carv4 checkpoint (a dict with 'state_dict': module.init_block.weight [60,3,3,3], "
            "module.block1_1.conv1.weight ... module.classifier.bias; sa + dil 24)")
# ad: flat 3x3 index -> the index whose weight it is paired with (PiDiNet's clockwise permutation)
AD_PERM = (3, 0, 1, 6, 4, 2, 7, 8, 5)
# rd: the 8 weights w[1..8] go to the 5x5 outer ring (+) and the 3x3 inner ring (-), flat 5x5 indices
RD_OUTER = (0, 2, 4, 10, 14, 20, 22, 24)
RD_INNER = (6, 7, 8, 11, 13, 16, 17, 18)


def convert_pdc(op, w):
    """The vanilla conv kernel equal to PDC `op` with 3x3 kernel w [O,I,3,3] (5x5 for rd)."""
    if op == 'cv':
        return w
    if op == 'cd':   # sum_k w_k x_k - (sum_k w_k) x_centre
        out = w.clone()
        out[:, :, 1, 1] -= w.sum(dim=(2, 3))
        return out
    flat = w.flatten(2)
    if op == 'ad':
        return (flat - flat[:, :, list(AD_PERM)]).view_as(w)
    if op == 'rd':
        out = w.new_zeros(*w.shape[:2], 25)
        out[:, :, list(RD_OUTER)] = flat[:, :, 1:]
        out[:, :, list(RD_INNER)] = -flat[:, :, 1:]
        return out.view(*w.shape[:2], 5, 5)
    raise ValueError(f'unknown pixel-difference op {op!r}')


class PDConv(nn.Module):
    """A 3x3 pixel-difference conv (stride 1, 'same' padding, no bias): the trainable form."""

    def __init__(self, op, cin, cout, groups=1):
        super().__init__()
        self.op, self.groups = op, groups
        self.weight = nn.Parameter(torch.empty(cout, cin // groups, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)   # nn.Conv2d's default, as PiDiNet

    def forward(self, x):
        w, g = self.weight, self.groups
        if self.op == 'cd':   # as the authors: a 3x3 conv minus a 1x1 conv with the kernel's sum
            return F.conv2d(x, w, padding=1, groups=g) - F.conv2d(x, w.sum(dim=(2, 3), keepdim=True), groups=g)
        pad = 2 if self.op == 'rd' else 1
        return F.conv2d(x, convert_pdc(self.op, w), padding=pad, groups=g)


def _layer_conv(op, cin, cout, groups, converted):
    if not converted:
        return PDConv(op, cin, cout, groups)
    k = 5 if op == 'rd' else 3
    return nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False)


class PDCBlock(nn.Module):
    """[max-pool 2 + 1x1 shortcut when downsampling] depthwise PDC -> ReLU -> 1x1 conv, plus the input."""

    def __init__(self, op, cin, cout, stride, converted):
        super().__init__()
        self.stride = stride
        if stride > 1:
            self.pool = nn.MaxPool2d(2, 2)
            self.shortcut = nn.Conv2d(cin, cout, 1)
        self.conv1 = _layer_conv(op, cin, cin, cin, converted)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        if self.stride > 1:
            x = self.pool(x)
        y = self.conv2(self.relu2(self.conv1(x)))
        return y + (self.shortcut(x) if self.stride > 1 else x)


class CDCM(nn.Module):
    """Compact dilation convolution module: ReLU, 1x1 to `dil` channels, sum of 3x3 convs dilated 5/7/9/11."""

    def __init__(self, cin, cout):
        super().__init__()
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, cout, 1)
        for i, d in enumerate((5, 7, 9, 11), start=1):
            setattr(self, f'conv2_{i}', nn.Conv2d(cout, cout, 3, dilation=d, padding=d, bias=False))
        nn.init.zeros_(self.conv1.bias)

    def forward(self, x):
        x = self.conv1(self.relu1(x))
        return self.conv2_1(x) + self.conv2_2(x) + self.conv2_3(x) + self.conv2_4(x)


class CSAM(nn.Module):
    """Compact spatial attention: x * sigmoid(conv3x3(conv1x1(relu(x)))) with 4 middle channels."""

    def __init__(self, channels):
        super().__init__()
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(channels, 4, 1)
        self.conv2 = nn.Conv2d(4, 1, 3, padding=1, bias=False)
        self.sigmoid = nn.Sigmoid()
        nn.init.zeros_(self.conv1.bias)

    def forward(self, x):
        return x * self.sigmoid(self.conv2(self.conv1(self.relu1(x))))


class MapReduce(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, 1)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        return self.conv(x)


class PiDiNet(nn.Module):
    """The network (official attribute names); input already normalised. forward -> 5 logit maps [B,1,H,W]
    (four side outputs, the fused map last). converted=True: vanilla convs (inference form)."""

    def __init__(self, pdcs=CARV4, width=60, dil=24, converted=False):
        super().__init__()
        self.pdcs, self.converted = tuple(pdcs), converted
        self.init_block = _layer_conv(pdcs[0], 3, width, 1, converted)
        widths = (width, 2 * width, 4 * width, 4 * width)
        cin, i = width, 1
        for stage, n in enumerate((3, 4, 4, 4), start=1):
            for b in range(1, n + 1):
                stride = 2 if stage > 1 and b == 1 else 1
                setattr(self, f'block{stage}_{b}', PDCBlock(pdcs[i], cin, widths[stage - 1], stride, converted))
                cin, i = widths[stage - 1], i + 1
        self.conv_reduces = nn.ModuleList(MapReduce(dil) for _ in range(4))
        self.attentions = nn.ModuleList(CSAM(dil) for _ in range(4))
        self.dilations = nn.ModuleList(CDCM(c, dil) for c in widths)
        self.classifier = nn.Conv2d(4, 1, 1)
        nn.init.constant_(self.classifier.weight, 0.25)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x):
        size = x.shape[2:]
        x = self.init_block(x)
        feats = []
        for stage, n in enumerate((3, 4, 4, 4), start=1):
            for b in range(1, n + 1):
                x = getattr(self, f'block{stage}_{b}')(x)
            feats.append(x)
        sides = [F.interpolate(red(att(dil(f))), size=size, mode='bilinear', align_corners=False)
                 for f, dil, att, red in zip(feats, self.dilations, self.attentions, self.conv_reduces)]
        return sides + [self.classifier(torch.cat(sides, 1))]


def pdc_key(i):
    """State-dict key of the kernel of PDC layer i."""
    return 'init_block.weight' if i == 0 else f'{LAYERS[i]}.conv1.weight'


def weights_form(sd, pdcs=CARV4):
    """'converted' when the rd layers hold 5x5 kernels, 'pdc' when 3x3, None when undecidable."""
    sizes = {sd[pdc_key(i)].shape[-1] for i, op in enumerate(pdcs) if op == 'rd' and pdc_key(i) in sd}
    return {frozenset({5}): 'converted', frozenset({3}): 'pdc'}.get(frozenset(sizes))


def convert_state_dict(sd, pdcs=CARV4):
    """PDC-form weights -> the converted (vanilla conv) network's weights."""
    out = dict(sd)
    for i, op in enumerate(pdcs):
        if pdc_key(i) in out:
            out[pdc_key(i)] = convert_pdc(op, out[pdc_key(i)])
    return out


class PiDiNetEdge(LearnedEdge):
    kind = 'pidinet'
    official = 'PiDiNet table5_pidinet.pth'

    def __init__(self, converted=True):
        super().__init__()
        self.net = PiDiNet(converted=converted)

    def preprocess(self, img):
        return imagenet(img)

    def load_weights(self, obj, source='<state_dict>'):
        sd = state_dict_of(obj, source, EXPECTED)
        sd = strip_prefixes(sd, ('module.',))
        form = weights_form(sd)
        if form == 'pdc' and self.net.converted:
            sd = convert_state_dict(sd)
        elif form == 'converted' and not self.net.converted:
            raise UserError(f'{source}: holds converted (vanilla conv) PiDiNet weights, which cannot be turned back '
                            f'into pixel-difference form for training; use the unconverted checkpoint')
        load_exact(self.net, sd, source, EXPECTED, obj)
        return self

    def official_checkpoint(self, epoch=0):
        """hellozhuo/pidinet's format: DataParallel keys under 'state_dict' (the PDC form when training)."""
        return {'epoch': int(epoch), 'state_dict': {'module.' + k: v for k, v in self.net.state_dict().items()}}


@EDGES.register('pidinet')
def build_pidinet(edge_cfg):
    return PiDiNetEdge.from_config(edge_cfg, converted=True)
