"""The learned student edges (common/edges/rcf.py, hed.py, pidinet.py, see.py): output shapes and range, the
official checkpoint layouts (written here from the published key names and shapes, not from our modules),
the loaders and their one-line errors, input normalisation, PiDiNet's conversion, and a student step each."""
import pytest
import torch
import torch.nn.functional as F

from common.edges.base import build_edge
from common.errors import UserError
from main.config import load_config

torch.set_grad_enabled(True)


# ---------------------------------------------------------------------------------------- official layouts
# {key: shape} of each official file, from the published code (see the docstring of each module)

def hed_layout():
    """pytorch-hed network-bsds500.pytorch: moduleVgg<Block>.<index> convs (index 0 is a max-pool after the
    first block), moduleScore<Block> 1x1 convs to 1 channel, moduleCombine.0 (5 -> 1)."""
    out = {}
    blocks = (('One', 3, 64, (0, 2)), ('Two', 64, 128, (1, 3)), ('Thr', 128, 256, (1, 3, 5)),
              ('Fou', 256, 512, (1, 3, 5)), ('Fiv', 512, 512, (1, 3, 5)))
    for name, cin, cout, idx in blocks:
        for j, i in enumerate(idx):
            out[f'moduleVgg{name}.{i}.weight'] = (cout, cin if j == 0 else cout, 3, 3)
            out[f'moduleVgg{name}.{i}.bias'] = (cout,)
        out[f'moduleScore{name}.weight'], out[f'moduleScore{name}.bias'] = (1, cout, 1, 1), (1,)
    out['moduleCombine.0.weight'], out['moduleCombine.0.bias'] = (1, 5, 1, 1), (1,)
    return out


def rcf_layout():
    """meteorshowers/RCF-pytorch: conv<b>_<i> (VGG16), conv<b>_<i>_down (to 21), score_dsn<b>, score_final."""
    out = {}
    for b, n, cin, cout in ((1, 2, 3, 64), (2, 2, 64, 128), (3, 3, 128, 256), (4, 3, 256, 512), (5, 3, 512, 512)):
        for i in range(1, n + 1):
            out[f'conv{b}_{i}.weight'], out[f'conv{b}_{i}.bias'] = (cout, cin if i == 1 else cout, 3, 3), (cout,)
            out[f'conv{b}_{i}_down.weight'], out[f'conv{b}_{i}_down.bias'] = (21, cout, 1, 1), (21,)
        out[f'score_dsn{b}.weight'], out[f'score_dsn{b}.bias'] = (1, 21, 1, 1), (1,)
    out['score_final.weight'], out['score_final.bias'] = (1, 5, 1, 1), (1,)
    return out


CARV4 = ('cd', 'ad', 'rd', 'cv') * 4


def pidinet_layout(converted=False):
    """hellozhuo/pidinet table5_pidinet.pth (carv4, 60 channels, --sa --dil): DataParallel keys."""
    out = {'init_block.weight': (60, 3, 3, 3)}
    widths = {1: 60, 2: 120, 3: 240, 4: 240}
    cin, layer = 60, 1
    for s, n in ((1, 3), (2, 4), (3, 4), (4, 4)):
        for b in range(1, n + 1):
            name = f'block{s}_{b}'
            k = 5 if converted and CARV4[layer] == 'rd' else 3
            out[f'{name}.conv1.weight'] = (cin, 1, k, k)
            out[f'{name}.conv2.weight'] = (widths[s], cin, 1, 1)
            if s > 1 and b == 1:
                out[f'{name}.shortcut.weight'], out[f'{name}.shortcut.bias'] = (widths[s], cin, 1, 1), (widths[s],)
            cin, layer = widths[s], layer + 1
    for i, c in enumerate((60, 120, 240, 240)):
        out[f'conv_reduces.{i}.conv.weight'], out[f'conv_reduces.{i}.conv.bias'] = (1, 24, 1, 1), (1,)
        out[f'attentions.{i}.conv1.weight'], out[f'attentions.{i}.conv1.bias'] = (4, 24, 1, 1), (4,)
        out[f'attentions.{i}.conv2.weight'] = (1, 4, 3, 3)
        out[f'dilations.{i}.conv1.weight'], out[f'dilations.{i}.conv1.bias'] = (24, c, 1, 1), (24,)
        for j in range(1, 5):
            out[f'dilations.{i}.conv2_{j}.weight'] = (24, 24, 3, 3)
    out['classifier.weight'], out['classifier.bias'] = (1, 4, 1, 1), (1,)
    return out


def _double_conv(prefix, cin, cout):
    out = {f'{prefix}.double_conv.0.weight': (cout, cin, 3, 3), f'{prefix}.double_conv.3.weight': (cout, cout, 3, 3)}
    for i in (1, 4):
        for p in ('weight', 'bias', 'running_mean', 'running_var'):
            out[f'{prefix}.double_conv.{i}.{p}'] = (cout,)
        out[f'{prefix}.double_conv.{i}.num_batches_tracked'] = ()
    return out


def see_layout():
    """SEFD's UNet(3, 2, bilinear=False, model_version='2'), incl. its unused Pose2Feat(30)."""
    c = (64, 128, 256, 512, 1024)
    out = _double_conv('inc', 3, 64)
    for i in range(1, 5):
        out.update(_double_conv(f'down{i}.maxpool_conv.1', c[i - 1], c[i]))
    for h in (1, 2):
        for i in range(1, 5):
            cin = c[5 - i]
            out[f'up{i}_{h}.up.weight'], out[f'up{i}_{h}.up.bias'] = (cin, cin // 2, 2, 2), (cin // 2,)
            out.update(_double_conv(f'up{i}_{h}.conv', cin, c[4 - i]))
        out[f'outc_{h}.conv.weight'], out[f'outc_{h}.conv.bias'] = (1, 64, 1, 1), (1,)
    out['pose2feat.conv.0.weight'], out['pose2feat.conv.0.bias'] = (64, 94, 3, 3), (64,)
    for p in ('weight', 'bias', 'running_mean', 'running_var'):
        out[f'pose2feat.conv.1.{p}'] = (64,)
    out['pose2feat.conv.1.num_batches_tracked'] = ()
    return out


def random_state(layout, seed=0, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in layout.items():
        if k.endswith('num_batches_tracked'):
            sd[k] = torch.tensor(7)
        elif k.endswith('running_var'):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * scale
    return sd


def official_file(kind, path, seed=0, form='pdc', prefix=True):
    """Write a checkpoint in the official format of `kind` with random weights; returns its tensors."""
    if kind == 'hed':
        sd = random_state(hed_layout(), seed)
        obj = sd
    elif kind == 'rcf':
        sd = random_state(rcf_layout(), seed)
        obj = {'epoch': 12, 'state_dict': sd, 'optimizer': {'state': {}, 'param_groups': []}}
    elif kind == 'pidinet':
        sd = random_state(pidinet_layout(converted=form == 'converted'), seed, scale=0.15)
        obj = {'epoch': 19, 'state_dict': {('module.' if prefix else '') + k: v for k, v in sd.items()}}
    else:
        sd = random_state(see_layout(), seed)
        obj = sd
    torch.save(obj, path)
    return sd


def estimator(kind, **kw):
    from common.edges.hed import HEDEdge
    from common.edges.pidinet import PiDiNetEdge
    from common.edges.rcf import RCFEdge
    from common.edges.see import SEEEdge
    return {'hed': HEDEdge, 'rcf': RCFEdge, 'pidinet': PiDiNetEdge, 'see': SEEEdge}[kind](**kw)


KINDS = ('rcf', 'hed', 'pidinet', 'see')
# the official file name of each layout key -> our module's key
RENAME = {'hed': lambda k: 'net' + k[len('module'):], 'rcf': lambda k: k, 'pidinet': lambda k: k, 'see': lambda k: k}


def edge_cfg(kind, weights=''):
    return load_config(None, ['mode=student', f'edge.type={kind}', f'edge.weights={weights}']).edge


# ---------------------------------------------------------------------------------------- layouts, loading

@pytest.mark.parametrize('kind', KINDS)
def test_official_layout_loads_exactly_and_saves_back(kind, tmp_path):
    path = tmp_path / f'{kind}.pth'
    sd = official_file(kind, path)
    net = build_edge(edge_cfg(kind, path))
    assert type(net).__name__.lower().startswith(kind)
    own = net.net.state_dict()
    expected = {RENAME[kind](k): v for k, v in sd.items() if not k.startswith('pose2feat.')}
    assert set(own) == set(expected)                       # the module has exactly the official tensors
    for k, v in expected.items():
        if kind == 'pidinet' and (k.endswith('conv1.weight') or k == 'init_block.weight'):
            continue                                       # converted at load (checked below)
        assert torch.equal(own[k], v.to(own[k].dtype)), k
    # and writes the official format back (same keys and values, the file's own naming)
    back = estimator(kind, **({'converted': False} if kind == 'pidinet' else {}))
    back.load_weights(torch.load(path, map_location='cpu', weights_only=True), str(path))
    obj = back.official_checkpoint(epoch=3)
    saved = obj['state_dict'] if kind in ('rcf', 'pidinet') else obj
    if kind == 'pidinet':
        saved = {k[len('module.'):]: v for k, v in saved.items()}
    assert set(saved) == set(sd)
    assert all(torch.equal(saved[k].float(), sd[k].float()) for k in sd if not k.startswith('pose2feat.'))


@pytest.mark.parametrize('kind', KINDS)
def test_output_shape_and_range(kind):
    torch.manual_seed(0)
    net = estimator(kind).eval()
    for h, w in ((64, 64), (72, 56)):           # also sizes that are not multiples of 16
        img = torch.rand(2, 3, h, w)
        e = net(img)
        assert e.shape == (2, 1, h, w) and e.dtype == torch.float32 and not e.requires_grad
        assert torch.isfinite(e).all() and e.min() >= 0 and e.max() <= 1
    out = net.outputs(img)
    assert len(out.edges) == {'rcf': 6, 'hed': 6, 'pidinet': 5, 'see': 1}[kind]
    assert (out.mask is not None) == (kind == 'see')
    assert all(o.shape == (2, 1, 72, 56) for o in out.edges)


@pytest.mark.parametrize('kind,other', [('hed', 'rcf'), ('rcf', 'pidinet'), ('pidinet', 'see'), ('see', 'hed')])
def test_loader_rejects_another_format_in_one_line(kind, other, tmp_path):
    path = tmp_path / f'{other}.pth'
    official_file(other, path)
    with pytest.raises(UserError) as e:
        build_edge(edge_cfg(kind, path))
    msg = str(e.value)
    assert '\n' not in msg and str(path) in msg
    expected_words = {'hed': 'pytorch-hed', 'rcf': 'RCF checkpoint', 'pidinet': 'PiDiNet carv4', 'see': 'SEE UNet'}
    found_words = {'hed': 'HED weights', 'rcf': 'RCF weights', 'pidinet': 'PiDiNet weights', 'see': 'SEE two-head'}
    assert f'expected {"an " if kind == "rcf" else ""}' in msg and expected_words[kind] in msg
    assert 'found' in msg and found_words[other] in msg


def test_loader_errors_for_missing_and_non_checkpoint_files(tmp_path):
    with pytest.raises(UserError, match='not found'):
        build_edge(edge_cfg('hed', tmp_path / 'nope.pth'))
    bad = tmp_path / 'text.pth'
    bad.write_text('not a checkpoint')
    with pytest.raises(UserError, match='corrupt or not a torch checkpoint'):
        build_edge(edge_cfg('rcf', bad))
    torch.save({'epoch': 3, 'state_dict': {'conv1_1.weight': torch.zeros(64, 3, 3, 3)}}, tmp_path / 'part.pth')
    with pytest.raises(UserError) as e:
        build_edge(edge_cfg('rcf', tmp_path / 'part.pth'))
    assert 'missing (e.g. ' in str(e.value) and '\n' not in str(e.value)


def test_default_weights_path_or_one_line_telling_both_options(tmp_path, monkeypatch):
    from common.edges import learned
    monkeypatch.setattr(learned, 'default_weights_path', lambda kind: tmp_path / f'{kind}.pth')
    with pytest.raises(UserError) as e:
        build_edge(edge_cfg('pidinet'))
    msg = str(e.value)
    assert '\n' not in msg and 'edge.weights' in msg and 'python tool/experiments/train_edge.py --edge pidinet' in msg
    official_file('pidinet', tmp_path / 'pidinet.pth')       # what train_edge.py writes there
    assert build_edge(edge_cfg('pidinet')).net.converted


def test_rcf_authors_release_layout_is_accepted(tmp_path):
    sd = random_state(rcf_layout())
    sd['score_fuse.weight'], sd['score_fuse.bias'] = sd.pop('score_final.weight'), sd.pop('score_final.bias')
    torch.save({'epoch': 10, 'state_dict': sd, 'optimizer': {}, 'lr_scheduler': {}}, tmp_path / 'bsds.pth')
    net = build_edge(edge_cfg('rcf', tmp_path / 'bsds.pth'))
    assert net.net.variant == 'yun-liu' and torch.equal(net.net.score_final.weight, sd['score_fuse.weight'])
    assert net(torch.rand(1, 3, 64, 64)).shape == (1, 1, 64, 64)


# ---------------------------------------------------------------------------------------- normalisation

def test_input_normalisation_by_hand():
    img = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1).expand(1, 3, 2, 2)      # RGB
    caffe = torch.tensor([0.8 * 255 - 104.00698793, 0.5 * 255 - 116.66876762, 0.2 * 255 - 122.67891434])  # BGR
    for kind in ('hed', 'rcf'):
        assert torch.allclose(estimator(kind).preprocess(img)[0, :, 0, 0], caffe, atol=1e-4)
    imnet = torch.tensor([(0.2 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.8 - 0.406) / 0.225])
    assert torch.allclose(estimator('pidinet').preprocess(img)[0, :, 0, 0], imnet, atol=1e-5)
    assert torch.equal(estimator('see').preprocess(img), img)


def test_rcf_upsampling_is_bilinear_and_aligned():
    """A constant side-output score upsampled by RCF's deconvolution and crop is the same constant inside."""
    from common.edges.rcf import bilinear_kernel
    k = bilinear_kernel(16)
    assert k.shape == (1, 1, 16, 16) and torch.isclose(k.sum(), torch.tensor(64.0))   # stride 8: 8x8 per tap
    up = F.conv_transpose2d(torch.ones(1, 1, 8, 8), k, stride=8)
    assert torch.allclose(up[0, 0, 8:-8, 8:-8], torch.ones(56, 56))


# ---------------------------------------------------------------------------------------- PiDiNet

def pixel_difference(x, w, op, groups):
    """The definitions of the PiDiNet paper, computed on unfolded 3x3/5x5 neighbourhoods (zero padding)."""
    B, C, H, W = x.shape
    n3 = F.unfold(x, 3, padding=1).view(B, C, 9, H, W)
    if op == 'cv':
        d = n3
    elif op == 'cd':                                        # x_k - x_centre
        d = n3 - n3[:, :, 4:5]
    elif op == 'ad':                                        # x_k - x_(next clockwise around the ring)
        nxt = {0: 1, 1: 2, 2: 5, 5: 8, 8: 7, 7: 6, 6: 3, 3: 0, 4: 4}
        d = n3 - n3[:, :, [nxt[k] for k in range(9)]]
    else:                                                   # rd: 5x5 ring minus the 3x3 ring, w_0 unused
        n5 = F.unfold(x, 5, padding=2).view(B, C, 25, H, W)
        outer, inner = (0, 2, 4, 10, 14, 20, 22, 24), (6, 7, 8, 11, 13, 16, 17, 18)
        d = torch.cat([torch.zeros_like(n3[:, :, :1]), n5[:, :, list(outer)] - n5[:, :, list(inner)]], 2)
    O = w.shape[0]
    d = d.view(B, groups, C // groups, 9, H, W)
    wg = w.view(groups, O // groups, C // groups, 9)
    return torch.einsum('bgckhw,gock->bgohw', d, wg).reshape(B, O, H, W)


@pytest.mark.parametrize('op', ['cv', 'cd', 'ad', 'rd'])
@pytest.mark.parametrize('groups', [1, 4])
def test_pdc_form_and_converted_conv_match_the_definition(op, groups):
    from common.edges.pidinet import PDConv, convert_pdc
    torch.manual_seed(1)
    x = torch.randn(2, 4, 9, 11)
    pdc = PDConv(op, 4, 8, groups)
    ref = pixel_difference(x, pdc.weight.detach(), op, groups)
    assert torch.allclose(pdc(x), ref, atol=1e-5)
    wc = convert_pdc(op, pdc.weight.detach())
    assert wc.shape[-1] == (5 if op == 'rd' else 3)
    assert torch.allclose(F.conv2d(x, wc, padding=wc.shape[-1] // 2, groups=groups), ref, atol=1e-5)


def test_pidinet_converted_network_equals_pdc_network(tmp_path):
    from common.edges.pidinet import PiDiNetEdge
    official_file('pidinet', tmp_path / 'p.pth', seed=3)
    obj = torch.load(tmp_path / 'p.pth', weights_only=True)
    pdc = PiDiNetEdge(converted=False).load_weights(obj).eval()
    conv = PiDiNetEdge(converted=True).load_weights(obj).eval()
    assert not any(isinstance(m, type(pdc.net.block1_2.conv1)) for m in conv.modules())   # vanilla convs only
    assert conv.net.block1_2.conv1.weight.shape[-1] == 5        # rd layer -> 5x5
    img = torch.rand(2, 3, 48, 40)
    with torch.no_grad():
        a, b = pdc.outputs(img).edges, conv.outputs(img).edges
    for x, y in zip(a, b):   # logits: float sums in another order, equal to ~1e-6 relative
        assert torch.allclose(x, y, atol=1e-5 * float(x.abs().max()))
    assert 0.01 < float(pdc(img).std())                      # not saturated: the comparison means something
    # an already converted checkpoint, without the DataParallel prefix, gives the same network
    torch.save({'state_dict': conv.net.state_dict()}, tmp_path / 'converted.pth')
    again = build_edge(edge_cfg('pidinet', tmp_path / 'converted.pth'))
    assert torch.allclose(again(img), conv(img), atol=1e-6)
    with pytest.raises(UserError, match='cannot be turned back'):
        PiDiNetEdge(converted=False).load_file(tmp_path / 'converted.pth')


# ---------------------------------------------------------------------------------------- student step

@pytest.fixture(scope='module')
def body():
    from common.body.smpl import get_body_model
    return get_body_model('neutral', None, 800)


TINY = ['model.backbone=resnet18', 'model.input_size=64', 'model.procedural_vertices=800']


@pytest.mark.parametrize('kind', KINDS)
def test_student_step_with_each_learned_edge(kind, body, tmp_path):
    from common.body.body_samples import make_batch
    from common.runtime import make_scaler
    from main.model import Model
    from main.trainer import forward_losses, make_optimizer, optimize
    official_file(kind, tmp_path / 'w.pth', seed=5)
    torch.manual_seed(0)
    cfg = load_config(None, TINY + ['mode=student', f'edge.type={kind}', f'edge.weights={tmp_path / "w.pth"}',
                                    'distill.loss=log_softmax_l1', 'distill.teacher_ckpt=x'])
    tcfg = load_config(None, TINY + ['mode=teacher', 'edge.type=smpl_overlap'])
    model = Model(cfg, body).set_teacher(Model(tcfg, body)).train()
    edge_net = model.edge.module
    assert not any(k.startswith('edge.') for k in model.state_dict())     # never in student checkpoints
    before = {k: v.clone() for k, v in edge_net.state_dict().items()}
    inputs, targets, meta = make_batch(body, 2, 64, in_channels=4)
    inputs['teacher_edge'] = inputs.pop('edge')
    # the 4th channel is the network's sigmoid map of the crop
    assert torch.allclose(model.edge_channel(inputs), edge_net(inputs['img']))
    cpu = torch.device('cpu')
    opt = make_optimizer(model, cfg)
    total, terms = forward_losses(model, inputs, targets, meta, False, cpu)
    assert torch.isfinite(total) and any('feature' in k or 'distill' in k for k in terms)
    optimize(total, model, opt, make_scaler(False, cpu))
    assert all(torch.equal(before[k], v) for k, v in edge_net.state_dict().items())   # frozen
    assert not edge_net.training
