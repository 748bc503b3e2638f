"""HRNet-W32/W48 backbones (common/nets/hrnet.py): stage shapes, the official ImageNet checkpoint layout,
loading with the head ignored and conv1 inflated, and baseline / teacher / distilled student with HRNet."""
import pytest
import torch

from common.errors import UserError
from common.registry import BACKBONES
from main.config import load_config


@pytest.fixture(scope='module')
def nets():
    """Built once: W32 with RGB + edge input (teacher/student), W48 with RGB input (baseline)."""
    torch.manual_seed(0)
    return {'hrnet_w32': BACKBONES.build('hrnet_w32', in_channels=4).eval(),
            'hrnet_w48': BACKBONES.build('hrnet_w48', in_channels=3).eval()}


@pytest.fixture(scope='module')
def w32(nets):
    return nets['hrnet_w32']


@pytest.mark.parametrize('name,chans', [('hrnet_w32', (32, 64, 128, 256)), ('hrnet_w48', (48, 96, 192, 384))])
def test_stem_and_four_stages(name, chans, nets):
    net = nets[name]
    c = net.in_channels
    assert net.stem_channels == 64 and net.out_channels == chans
    with torch.no_grad():
        stem = net(torch.rand(2, c, 64, 96))
        assert stem.shape == (2, 64, 16, 24)                         # stride 4
        feats = net(stem, skip_early=True)
    assert isinstance(feats, tuple) and len(feats) == 4
    for f, c, s in zip(feats, chans, (4, 8, 16, 32)):
        assert f.shape == (2, c, 64 // s, 96 // s)


def test_any_input_channel_count():
    net = BACKBONES.build('hrnet_w32', in_channels=1)
    assert net.conv1.weight.shape == (64, 1, 3, 3)
    assert net(torch.rand(1, 1, 32, 32)).shape == (1, 64, 8, 8)


def _head_params(chans):
    """Parameters of the official classification head (cls_hrnet.py _make_head + classifier), in closed form:
    per branch a Bottleneck C_i -> 4h_i (h = 32, 64, 128, 256) with a 1x1 downsample, three strided 3x3
    convs (with bias) + BN between them, a 1x1 conv 1024 -> 2048 (+ BN), a 1000-way linear layer."""
    h = (32, 64, 128, 256)
    n = 0
    for c, hi in zip(chans, h):
        n += c * hi + 2 * hi + 9 * hi * hi + 2 * hi + hi * 4 * hi + 2 * 4 * hi   # conv1 bn1 conv2 bn2 conv3 bn3
        n += c * 4 * hi + 2 * 4 * hi                                             # downsample conv + bn
    for a, b in zip(h[:-1], h[1:]):
        n += 9 * 4 * a * 4 * b + 4 * b + 2 * 4 * b
    return n + 1024 * 2048 + 2048 + 2 * 2048 + 2048 * 1000 + 1000


@pytest.mark.parametrize('name,millions', [('hrnet_w32', 41.2), ('hrnet_w48', 77.5)])
def test_parameter_count_matches_the_published_model(name, millions, nets):
    """HRNet-Image-Classification's README: HRNet-W32-C 41.2M, HRNet-W48-C 77.5M parameters (with the head)."""
    net = nets[name]
    extra = 64 * 9 * (net.in_channels - 3)                  # the published models take RGB
    total = sum(p.numel() for p in net.parameters()) - extra + _head_params(net.out_channels)
    assert abs(total / 1e6 - millions) < 0.05


def test_official_key_layout(w32):
    sd = w32.state_dict()
    expected = {   # a sample of cls_hrnet.py's keys, with the shapes its code gives them
        'conv1.weight': (64, 4, 3, 3), 'conv2.weight': (64, 64, 3, 3), 'bn2.running_var': (64,),
        'layer1.0.downsample.0.weight': (256, 64, 1, 1), 'layer1.3.conv3.weight': (256, 64, 1, 1),
        'transition1.0.0.weight': (32, 256, 3, 3), 'transition1.1.0.0.weight': (64, 256, 3, 3),
        'stage2.0.branches.1.3.conv2.weight': (64, 64, 3, 3),
        'stage2.0.fuse_layers.0.1.0.weight': (32, 64, 1, 1), 'stage2.0.fuse_layers.1.0.0.0.weight': (64, 32, 3, 3),
        'transition2.2.0.0.weight': (128, 64, 3, 3), 'stage3.3.branches.2.0.bn1.weight': (128,),
        'transition3.3.0.0.weight': (256, 128, 3, 3),
        'stage4.2.fuse_layers.3.0.0.0.weight': (32, 32, 3, 3), 'stage4.2.fuse_layers.3.0.2.0.weight': (256, 32, 3, 3),
        'stage4.2.fuse_layers.3.0.2.1.running_mean': (256,), 'stage4.2.fuse_layers.0.3.0.weight': (32, 256, 1, 1),
    }
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    # identity fusions and unchanged branches have no modules, as in the official file
    assert not any(k.startswith(('transition2.0', 'transition2.1', 'stage2.0.fuse_layers.0.0')) for k in sd)
    assert sum(1 for k in sd if k.startswith('stage4.')) and not any(k.startswith('stage5') for k in sd)


def test_loads_official_checkpoint_ignoring_head_and_inflating_conv1(tmp_path):
    torch.manual_seed(1)
    src = BACKBONES.build('hrnet_w32').eval()          # a 3-channel "ImageNet" backbone
    ckpt = dict(src.state_dict())
    ckpt.update({'incre_modules.0.0.conv1.weight': torch.zeros(32, 32, 1, 1),
                 'downsamp_modules.0.0.bias': torch.zeros(256),
                 'final_layer.0.weight': torch.zeros(2048, 1024, 1, 1), 'classifier.weight': torch.zeros(1000, 2048),
                 'classifier.bias': torch.zeros(1000)})
    torch.save(ckpt, tmp_path / 'hrnetv2_w32_imagenet_pretrained.pth')
    net = BACKBONES.build('hrnet_w32', in_channels=4).eval()
    summary = net.load_pretrained(tmp_path / 'hrnetv2_w32_imagenet_pretrained.pth')
    assert summary.inflated_conv1 and not summary.missing and not summary.unexpected
    assert set(summary.ignored) == {k for k in ckpt if k.startswith(('incre', 'downsamp', 'final', 'classifier'))}
    assert torch.equal(net.conv1.weight[:, :3], src.conv1.weight)
    assert net.conv1.weight[:, 3].abs().max() < 0.01
    # with an empty edge channel the inflated network computes exactly the RGB network
    img = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a = src(src(img), skip_early=True)
        b = net(net(torch.cat([img, torch.zeros(1, 1, 64, 64)], 1)), skip_early=True)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a, b))
    # a DataParallel whole-model checkpoint contributes its backbone
    wrapped = {'network': {f'module.backbone.{k}': v for k, v in src.state_dict().items()}}
    assert not BACKBONES.build('hrnet_w32').load_pretrained(wrapped).missing


def test_wrong_width_checkpoint_is_one_line(nets):
    w48 = nets['hrnet_w48'].state_dict()
    with pytest.raises(UserError) as e:
        BACKBONES.build('hrnet_w32').load_pretrained(w48, source='w48.pth')
    assert '\n' not in str(e.value) and 'HRNet-W32 expects' in str(e.value) and 'w48.pth' in str(e.value)


TINY = ['model.backbone=hrnet_w32', 'model.input_size=64', 'model.procedural_vertices=800']


@pytest.mark.slow
def test_baseline_teacher_and_distilled_student_with_hrnet():
    from common.body.body_samples import make_batch
    from common.body.smpl import get_body_model
    from common.runtime import make_scaler
    from main.model import Model
    from main.trainer import forward_losses, make_optimizer, optimize
    body = get_body_model('neutral', None, 800)
    torch.manual_seed(0)
    inputs, targets, meta = make_batch(body, 2, 64, in_channels=4)
    base = Model(load_config(None, TINY), body).eval()
    out = base({'img': inputs['img'], 'joints': inputs['joints'], 'joints_mask': inputs['joints_mask']}, mode='test')
    assert out['joint_img'].shape == (2, 15, 3) and out['mesh_cam'].shape == (2, body.num_vertices, 3)

    teacher = Model(load_config(None, TINY + ['mode=teacher', 'edge.type=smpl_overlap']), body)
    cfg = load_config(None, TINY + ['mode=student', 'edge.type=canny', 'distill.loss=log_softmax_l1',
                                    'distill.teacher_ckpt=x', 'distill.stages=[1,2,3,4]',
                                    'distill.weights=[1,1,1,2]'])
    student = Model(cfg, body).set_teacher(teacher).train()
    inputs['teacher_edge'] = inputs.pop('edge')
    t_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    s_before = student.backbone.stage4[0].branches[3][0].conv1.weight.clone()
    cpu = torch.device('cpu')
    total, terms = forward_losses(student, inputs, targets, meta, False, cpu)
    distill = {k: v for k, v in terms.items() if k.startswith('distill')}
    assert len(distill) == 4 and all(torch.isfinite(v) and v > 0 for v in distill.values())
    optimize(total, student, make_optimizer(student, cfg), make_scaler(False, cpu))
    assert not torch.equal(student.backbone.stage4[0].branches[3][0].conv1.weight, s_before)
    assert all(torch.equal(t_before[k], v) for k, v in teacher.state_dict().items())
