"""Independent checks of the networks in common/nets (backbone, heads, VPoser decoder, losses)."""
import math

import pytest
import torch
import torch.nn as nn

from common.errors import UserError
from common.nets.layer import GraphConvBlock, GraphResBlock, graph_adjacency
from common.nets.loss import CoordLoss, ParamLoss
from common.nets.module import (Pose2Feat, PositionNet, RotationNet, render_gaussian_heatmaps,
                                sample_joint_features, soft_argmax_3d)
from common.nets.resnet import ResNet
from common.registry import BACKBONES


# ----------------------------------------------------------------------------------------------- backbone

def torchvision_keys(depth):
    """torchvision's resnet state-dict key names, written out from the architecture (fc included)."""
    bottleneck = depth >= 50
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}[depth]
    bn = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
    keys = ['conv1.weight'] + [f'bn1.{b}' for b in bn]
    for li, n in enumerate(blocks, start=1):
        for bi in range(n):
            p = f'layer{li}.{bi}.'
            for c in range(1, 4 if bottleneck else 3):
                keys += [f'{p}conv{c}.weight'] + [f'{p}bn{c}.{b}' for b in bn]
            if bi == 0 and (li > 1 or bottleneck):
                keys += [f'{p}downsample.0.weight'] + [f'{p}downsample.1.{b}' for b in bn]
    return keys + ['fc.weight', 'fc.bias']


@pytest.mark.parametrize('depth,count', [(18, 122), (34, 218), (50, 320)])
def test_state_dict_keys_match_torchvision(depth, count):
    keys = torchvision_keys(depth)
    assert len(keys) == count          # torchvision's published totals, fc included
    own = list(ResNet(depth).state_dict())
    assert own == [k for k in keys if not k.startswith('fc.')]
    for k in ('conv1.weight', 'bn1.running_var', 'layer1.0.conv1.weight', 'layer4.1.bn2.num_batches_tracked'):
        assert k in own


def test_resnet50_stage_shapes():
    net = ResNet(50).eval()
    with torch.no_grad():
        for size in (256, 128, 64):
            stem = net(torch.zeros(1, 3, size, size))
            assert stem.shape == (1, 64, size // 4, size // 4)
            stages = net(stem, skip_early=True)
            assert isinstance(stages, tuple) and len(stages) == 4
            expect = [(256, size // 4), (512, size // 8), (1024, size // 16), (2048, size // 32)]
            assert [tuple(s.shape) for s in stages] == [(1, c, r, r) for c, r in expect]


def test_resnet18_forward_variants_and_registry():
    net = BACKBONES.build('resnet18', in_channels=4).eval()
    assert net.out_channels == (64, 128, 256, 512)
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        stem = net.forward_early(x)
        assert torch.equal(stem, net(x))
        a, b = net.forward_stages(stem), net(stem, skip_early=True)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert [s.shape[1] for s in a] == [64, 128, 256, 512]
    assert set(BACKBONES.names()) >= {'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'}


def _randomised(net):
    """Non-trivial weights and BN statistics, so equal outputs mean equal weights."""
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


def test_conv1_inflation_keeps_rgb_output():
    rgb = _randomised(ResNet(18))
    ckpt = {'network': {f'module.backbone.{k}': v for k, v in rgb.state_dict().items()}}
    ckpt['network']['module.fc.weight'] = torch.zeros(1000, 512)   # classification head: ignored
    ckpt['network']['module.pose2feat.conv.0.weight'] = torch.zeros(1)  # other modules: not backbone keys
    rgbe = ResNet(18, in_channels=4)
    summary = rgbe.load_pretrained(ckpt)
    assert summary.inflated_conv1 and not summary.missing and not summary.unexpected
    w = rgbe.conv1.weight
    assert torch.equal(w[:, :3], rgb.conv1.weight)
    assert 0 < w[:, 3].std() < 0.01
    x = torch.randn(2, 3, 64, 64)
    rgbe.eval()
    with torch.no_grad():
        x4 = torch.cat([x, torch.zeros(2, 1, 64, 64)], 1)
        ref = rgb(rgb(x), skip_early=True)
        out = rgbe(rgbe(x4), skip_early=True)
    for r, o in zip(ref, out):
        torch.testing.assert_close(o, r)


def test_load_pretrained_reports_and_errors(tmp_path):
    src = ResNet(18)
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith('num_batches_tracked')}
    del sd['layer4.1.bn2.weight']
    sd['deconv_layers.0.weight'] = torch.zeros(1)   # SimpleBaseline head
    path = tmp_path / 'simple.pth.tar'
    torch.save({'state_dict': sd}, path)
    summary = ResNet(18).load_pretrained(path)
    assert summary.missing == ['layer4.1.bn2.weight']      # num_batches_tracked is not reported
    assert summary.unexpected == ['deconv_layers.0.weight']

    bad = dict(sd, **{'layer2.0.conv1.weight': torch.zeros(3, 3, 3, 3)})
    with pytest.raises(UserError, match='layer2.0.conv1.weight'):
        ResNet(18).load_pretrained(bad)
    with pytest.raises(UserError, match='conv1.weight'):          # 4-channel teacher into a 3-channel model
        ResNet(18).load_pretrained(ResNet(18, in_channels=4).state_dict())
    with pytest.raises(UserError, match='nope.pth'):
        ResNet(18).load_pretrained(tmp_path / 'nope.pth')
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(UserError, match='junk.pth'):
        ResNet(18).load_pretrained(tmp_path / 'junk.pth')


def test_from_scratch_init():
    """He-normal, fan_out: std sqrt(2 / (out channels x kernel area)); 256 x 9 for layer3's first conv."""
    torch.manual_seed(0)
    net = ResNet(18)
    w = net.layer3[0].conv1.weight
    expect = math.sqrt(2 / (256 * 9))
    assert abs(w.std().item() - expect) < 0.05 * expect   # 295k weights: the sample std is within ~0.3%
    assert torch.equal(net.bn1.weight, torch.ones(64)) and torch.equal(net.bn1.bias, torch.zeros(64))


# ----------------------------------------------------------------------------------------------- heads

def test_gaussian_heatmap_closed_form():
    joints = torch.tensor([[[10.3, 20.7], [5.0, 5.0]]])
    mask = torch.tensor([[[1.0], [0.0]]])
    hm = render_gaussian_heatmaps(joints, mask, (32, 48), sigma=2.5)
    assert hm.shape == (1, 2, 32, 48) and not hm.requires_grad
    expect = math.exp(-((12 - 10.3) ** 2 + (19 - 20.7) ** 2) / (2 * 2.5 ** 2))
    assert hm[0, 0, 19, 12].item() == pytest.approx(expect, rel=1e-5)   # [y, x] indexing
    assert hm[0, 0, 21, 10].item() == pytest.approx(math.exp(-(0.3 ** 2 + 0.3 ** 2) / 12.5), rel=1e-5)
    assert hm[0, 1].abs().max() == 0


def test_soft_argmax_of_peaked_volume():
    vol = torch.full((1, 2, 4, 5, 6), -50.0)
    vol[0, 0, 3, 1, 4] = 50.0           # (d, h, w) -> expect (x, y, z) = (4, 1, 3)
    vol[0, 1, 0, 4, 5] = 50.0
    coord, prob = soft_argmax_3d(vol)
    torch.testing.assert_close(coord, torch.tensor([[[4.0, 1.0, 3.0], [5.0, 4.0, 0.0]]]))
    torch.testing.assert_close(prob.sum(dim=(2, 3, 4)), torch.ones(1, 2))


def test_position_net_coordinates_and_score():
    # in_ch=1: logit of channel (j, d) = w * feature; a one-hot feature at (h=1, w=0) with a large weight
    # on (joint 0, depth 1) peaks the volume there.
    net = PositionNet(num_joints=2, in_ch=1, depth=2)
    conv = net.conv[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[1, 0] = 100.0       # channel j*D + d = 0*2 + 1
    feat = torch.zeros(1, 1, 2, 2)
    feat[0, 0, 1, 0] = 1.0
    joint_img, score = net(feat)
    torch.testing.assert_close(joint_img[0, 0], torch.tensor([0.0, 1.0, 1.0]))
    assert score[0, 0].item() == pytest.approx(1.0, abs=1e-5)
    # joint 1 sees a uniform volume: centre of the 2x2x2 grid, score 1/8 (trilinear of a constant)
    torch.testing.assert_close(joint_img[0, 1], torch.tensor([0.5, 0.5, 0.5]))
    assert score[0, 1].item() == pytest.approx(1 / 8, abs=1e-6)


def test_sample_joint_features_align_corners():
    feat = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)
    xy = torch.tensor([[[3.0, 2.0], [0.5, 0.0]]])      # (x, y): an exact cell, then between two cells
    out = sample_joint_features(feat, xy)
    assert out.shape == (1, 2, 2)
    torch.testing.assert_close(out[0, 0], feat[0, :, 2, 3])
    torch.testing.assert_close(out[0, 1], (feat[0, :, 0, 0] + feat[0, :, 0, 1]) / 2)


def test_adjacency_normalisation_chain():
    adj = graph_adjacency(3, skeleton=[(0, 1), (1, 2)])
    s6 = 1 / math.sqrt(6)
    expect = torch.tensor([[1 / 2, s6, 0], [s6, 1 / 3, s6], [0, s6, 1 / 2]])
    torch.testing.assert_close(adj, expect)
    assert torch.equal(adj, adj.t())
    # flip pairs are edges too
    assert graph_adjacency(3, skeleton=[(0, 1)], flip_pairs=[(0, 2)])[0, 2] > 0


def _reference_graph_conv(x, adj, linears, bns):
    """The reference layout: one Linear + BatchNorm1d per vertex, a Python loop over vertices."""
    h = torch.stack([bn(lin(x[:, j])) for j, (lin, bn) in enumerate(zip(linears, bns))], 1)
    return torch.relu(adj @ h)


def test_graph_conv_matches_per_vertex_layout_and_loads_it():
    torch.manual_seed(0)
    J, cin, cout = 4, 5, 3
    adj = graph_adjacency(J, skeleton=[(0, 1), (1, 2), (2, 3)])
    linears = nn.ModuleList([nn.Linear(cin, cout) for _ in range(J)])
    bns = nn.ModuleList([nn.BatchNorm1d(cout) for _ in range(J)])
    for bn in bns:
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    ref_sd = {}
    for j in range(J):
        ref_sd.update({f'fcbn_list.{j}.0.{k}': v for k, v in linears[j].state_dict().items()})
        ref_sd.update({f'fcbn_list.{j}.1.{k}': v for k, v in bns[j].state_dict().items()})
    block = GraphConvBlock(adj, cin, cout)
    block.load_state_dict(ref_sd)
    x = torch.randn(6, J, cin)
    torch.testing.assert_close(block(x), _reference_graph_conv(x, adj, linears, bns))   # train: batch stats
    for bn in bns:
        bn.eval()
    block.eval()
    torch.testing.assert_close(block(x), _reference_graph_conv(x, adj, linears, bns))   # eval: running stats
    res = GraphResBlock(adj, cout)
    y = torch.randn(6, J, cout)
    torch.testing.assert_close(res(y), res.graph_block2(res.graph_block1(y)) + y)


def test_rotation_net_outputs_and_detach():
    torch.manual_seed(0)
    net = RotationNet(num_joints=15, in_ch=16, hidden=8, num_res_blocks=2, pose_out=21 * 6)
    net.init_weights()
    assert abs(net.hidden2pose.weight.std().item() - 0.01) < 2e-3
    feat = torch.randn(2, 16, 2, 2, requires_grad=True)
    joint_img = (torch.rand(2, 15, 3)).requires_grad_()
    score = torch.rand(2, 15, 1, requires_grad=True)
    out = net(feat, joint_img, score)
    assert [tuple(o.shape) for o in out] == [(2, 6), (2, 126), (2, 10), (2, 3)]
    assert out.root_pose_6d is out[0]
    sum(o.sum() for o in out).backward()
    assert feat.grad is not None and score.grad is None
    assert joint_img.grad[..., 2].abs().sum() == 0    # z only enters through the detached concat


def test_pose2feat_shape_and_init():
    net = Pose2Feat(num_joints=30, feat_dim=64)
    net.init_weights()
    assert torch.equal(net.conv[0].bias, torch.zeros(64))
    assert abs(net.conv[0].weight.std().item() - 1e-3) < 2e-4
    out = net(torch.randn(2, 64, 16, 16), torch.rand(2, 30, 16, 16))
    assert out.shape == (2, 64, 16, 16) and (out >= 0).all()


# ----------------------------------------------------------------------------------------------- pose decoders

def test_vposer_decoder_frozen_eval_and_roundtrip(tmp_path):
    from common.nets.vposer import VPoserDecoder, load_vposer_v1
    torch.manual_seed(0)
    dec = VPoserDecoder()
    assert not any(p.requires_grad for p in dec.parameters())
    dec.train()
    assert not dec.training and not dec.dropout.training
    z = torch.randn(4, 32, requires_grad=True)
    a, b = dec(z), dec(z)
    assert a.shape == (4, 63) and torch.equal(a, b)
    a.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0        # the latent still gets gradients

    ckpt = {f'module.{k}': v for k, v in dec.state_dict().items()}
    ckpt['module.bodyprior_enc_fc1.weight'] = torch.zeros(512, 63)   # encoder weights are dropped
    path = tmp_path / 'TR00_E096.pt'
    torch.save(ckpt, path)
    loaded = load_vposer_v1(path)
    assert loaded.loaded_from == str(path)
    assert torch.equal(loaded(z), a)
    (tmp_path / 'snapshots').mkdir()
    torch.save(ckpt, tmp_path / 'snapshots' / 'TR00_E001.pt')
    assert torch.equal(load_vposer_v1(tmp_path)(z), a)          # experiment folder -> its snapshot

    with pytest.raises(UserError, match='missing.pt'):
        load_vposer_v1(tmp_path / 'missing.pt')
    (tmp_path / 'bad.pt').write_bytes(b'\x00garbage')
    with pytest.raises(UserError, match='bad.pt'):
        load_vposer_v1(tmp_path / 'bad.pt')
    torch.save({'decoder_net.0.weight': torch.zeros(1)}, tmp_path / 'v2.pt')
    with pytest.raises(UserError, match='v2'):
        load_vposer_v1(tmp_path / 'v2.pt')


def test_vposer_decoder_matches_continuous_6d_layout():
    from common.nets.vposer import VPoserDecoder
    dec = VPoserDecoder()
    with torch.no_grad():
        for layer in (dec.bodyprior_dec_fc1, dec.bodyprior_dec_fc2, dec.bodyprior_dec_out):
            layer.weight.zero_()
            layer.bias.zero_()
        # every joint decodes the 6D (a1 = e_x, a2 = e_y + e_z) -> rotation columns (e_x, e_y', ...)
        dec.bodyprior_dec_out.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0]).repeat(21))
    R = dec(torch.zeros(1, 32), output_type='matrot')[0, 0]
    s = 1 / math.sqrt(2)
    expect = torch.tensor([[1.0, 0, 0], [0, s, -s], [0, s, s]])     # 45 deg about x
    torch.testing.assert_close(R, expect)
    aa = dec(torch.zeros(1, 32))[0, :3]
    torch.testing.assert_close(aa, torch.tensor([math.pi / 4, 0.0, 0.0]))


def test_rot6d_pose_identity():
    from common.nets.vposer import rot6d_pose
    code = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).repeat(2, 21)
    aa = rot6d_pose(code)
    assert aa.shape == (2, 63)
    torch.testing.assert_close(aa, torch.zeros(2, 63))
    torch.testing.assert_close(rot6d_pose(torch.zeros(2, 126), identity_offset=True), torch.zeros(2, 63))


# ----------------------------------------------------------------------------------------------- losses

def test_coord_loss_hand_computed():
    out = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]])
    gt = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [[0.0, 3.0, 5.0], [2.0, 2.0, 0.5]]])
    valid = torch.tensor([[[1.0], [0.0]], [[1.0], [1.0]]])
    is_3d = torch.tensor([1.0, 0.0])
    expect = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]])
    loss = CoordLoss()(out, gt, valid, is_3d)
    assert torch.equal(loss, expect)
    expect_no3d = expect.clone()
    expect_no3d[1, 0, 2], expect_no3d[1, 1, 2] = 4.0, 1.5
    assert torch.equal(CoordLoss()(out, gt, valid), expect_no3d)
    assert torch.equal(CoordLoss()(out, gt, valid, is_3d[:, None]), expect)   # [B,1] flag too
    assert torch.equal(CoordLoss()(out[..., :2], gt[..., :2], valid, is_3d), expect[..., :2])


def test_param_loss_hand_computed():
    out = torch.tensor([[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]])
    gt = torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    valid = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert torch.equal(ParamLoss()(out, gt, valid), torch.tensor([[0.5, 2.0, 0.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(ParamLoss()(out, gt, torch.tensor([[1.0], [0.0]])),
                       torch.tensor([[0.5, 2.0, 0.0], [0.0, 0.0, 0.0]]))


def test_pipeline_bf16_autocast_and_channels_last():
    torch.manual_seed(0)
    cl = torch.channels_last
    net = ResNet(18).to(memory_format=cl)
    p2f, pos = Pose2Feat(30, 64).to(memory_format=cl), PositionNet(15, 512, depth=2).to(memory_format=cl)
    rot = RotationNet(15, 512, hidden=16, num_res_blocks=1)
    for m in (p2f, pos, rot):
        m.init_weights()
    x = torch.randn(2, 3, 64, 64).to(memory_format=cl)
    hm = render_gaussian_heatmaps(torch.rand(2, 30, 2) * 16, torch.ones(2, 30, 1), (16, 16))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        c4 = net(p2f(net(x), hm), skip_early=True)[3]
        joint_img, score = pos(c4)
        out = rot(c4, joint_img, score)
    assert joint_img.shape == (2, 15, 3) and joint_img.dtype == torch.float32
    assert all(o.dtype == torch.float32 for o in out)      # heads hand fp32 to SMPL / rotations
    (joint_img.sum() + sum(o.sum() for o in out)).backward()
    assert net.conv1.weight.grad is not None


# ----------------------------------------------------------------------------------------- frozen networks

@pytest.mark.parametrize('backbone', ['resnet18', 'resnet50', 'hrnet_w32'])
def test_frozen_folds_every_batchnorm_and_keeps_the_outputs(backbone):
    """Frozen folds eval-mode BatchNorm into the convs: no BatchNorm2d left, the same stages up to rounding."""
    import copy

    from common.nets.frozen import Frozen
    torch.manual_seed(0)
    net = BACKBONES.build(backbone, in_channels=4).eval()
    for m in net.modules():   # statistics and affines far from the identity, so a wrong fold shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.3, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        expected = net(net(x), skip_early=True)
    reference = copy.deepcopy(net)
    frozen = Frozen(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert not frozen.training and not any(p.requires_grad for p in net.parameters())
    with torch.no_grad():
        got = net(net(x), skip_early=True)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4 * float(e.abs().max()))
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in reference.parameters())
