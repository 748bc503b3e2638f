"""Published 3DCrowdNet / SEFD snapshots load, convert and evaluate like the same weights loaded natively.

The fixtures are written in the published layout, key by key from the published model code: a DataParallel
'module.' prefix; ResNet in torchvision's layout; Pose2Feat / PositionNet `conv.<i>`; RotationNet's per-vertex
`fcbn_list.<j>.{0: Linear, 1: BatchNorm1d}` and `root_pose_out/pose_out/shape_out/cam_out.0` heads; the whole
human_body_prior v1 VPoser under `vposer.vposer.`; the SMPL layer's buffers `human_model_layer.th_*`; in a SEFD
student its DataParallel teacher `smpl_overlap_backbone.module.{backbone,pose2feat}` (and GCBLOCK<k> for GC_loss);
{'epoch', 'network', 'optimizer'} around it.
"""
import dataclasses
import math

import cv2
import numpy as np
import pytest
import torch

from common.body.body_samples import make_batch
from common.body.smpl import get_body_model
from common.errors import UserError
from main.checkpoint import config_of, load_checkpoint, load_model_state, load_teacher, model_from_checkpoint
from main.config import load_config, published_defaults
from main.model import Model
from tool.convert import convert_checkpoint

VERTICES, S = 800, 64
TINY = ['model.pose_head=vposer', 'model.vposer_ckpt=checkpoint']
BODY = [f'model.procedural_vertices={VERTICES}']   # the body model is not in the weights
UPRIGHT_6D = torch.tensor([1.0, 0, 0, -1, 0, 0])   # our root offset, Rx(pi); published 6D layout: view(3, 2)


def tiny_cfg(*extra):
    """The published architecture (no input pose in the head, the published camera), tiny."""
    return published_defaults(load_config('assets/yaml/tiny_cpu.yml', TINY + list(extra)))


def randomise(model, seed):
    """Weights and BN statistics far from their init, so that equal outputs mean equal weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith('running_var') or (name.endswith('.weight') and t.dim() == 1):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif t.dim() > 1:
                t.copy_(torch.randn(t.shape, generator=g) / math.sqrt(t[0].numel()))
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()


def fcbn(prefix, w, b, bn):
    """One GraphConvBlock in the published per-vertex layout: J x (Linear [out,in], BatchNorm1d(out))."""
    out, J = {}, w.shape[0]
    c = w.shape[2]
    for j in range(J):
        out[f'{prefix}fcbn_list.{j}.0.weight'] = w[j].t().clone()
        out[f'{prefix}fcbn_list.{j}.0.bias'] = b[j].clone()
        for k in ('weight', 'bias', 'running_mean', 'running_var'):
            out[f'{prefix}fcbn_list.{j}.1.{k}'] = bn[k][j * c:(j + 1) * c].clone()
        out[f'{prefix}fcbn_list.{j}.1.num_batches_tracked'] = torch.tensor(7)
    return out


def vposer_v1(dec, seed=1):
    """The human_body_prior v1 VPoser (num_neurons 512, latentD 32, data_shape [1,21,3]): encoder too."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.05  # noqa: E731
    enc = {'bodyprior_enc_bn1.weight': 1 + r(63), 'bodyprior_enc_bn1.bias': r(63),
           'bodyprior_enc_bn1.running_mean': r(63), 'bodyprior_enc_bn1.running_var': 1 + r(63).abs(),
           'bodyprior_enc_bn1.num_batches_tracked': torch.tensor(9),
           'bodyprior_enc_fc1.weight': r(512, 63), 'bodyprior_enc_fc1.bias': r(512),
           'bodyprior_enc_bn2.weight': 1 + r(512), 'bodyprior_enc_bn2.bias': r(512),
           'bodyprior_enc_bn2.running_mean': r(512), 'bodyprior_enc_bn2.running_var': 1 + r(512).abs(),
           'bodyprior_enc_bn2.num_batches_tracked': torch.tensor(9), 'bodyprior_enc_fc2.weight': r(512, 512),
           'bodyprior_enc_fc2.bias': r(512), 'bodyprior_enc_mu.weight': r(32, 512), 'bodyprior_enc_mu.bias': r(32),
           'bodyprior_enc_logvar.weight': r(32, 512), 'bodyprior_enc_logvar.bias': r(32)}
    return {f'vposer.vposer.{k}': v for k, v in {**enc, **dec}.items()}


def smpl_layer():
    """The buffers of smplpytorch's SMPL_Layer, which the published Model holds as `human_model_layer` (the
    published shapes; expanded zeros, so the file stays small)."""
    V = 6890
    shapes = {'th_betas': (1, 10), 'th_shapedirs': (V, 3, 10), 'th_posedirs': (V, 3, 207), 'th_v_template': (1, V, 3),
              'th_J_regressor': (24, V), 'th_weights': (V, 24)}
    out = {f'human_model_layer.{k}': torch.zeros(()).expand(*s) for k, s in shapes.items()}
    out['human_model_layer.th_faces'] = torch.zeros((), dtype=torch.long).expand(13776, 3)
    return out


def published_network(sd):
    """A model state dict of ours (baseline/teacher/student body) -> the published model's keys (no prefix)."""
    heads = {'hidden2root': 'root_pose_out.0', 'hidden2pose': 'pose_out.0', 'hidden2shape': 'shape_out.0',
             'hidden2cam': 'cam_out.0'}
    net = {k: v.clone() for k, v in sd.items() if k.startswith(('backbone.', 'pose2feat.', 'position_net.'))}
    for k, v in sd.items():
        if k.startswith('rotation_net.hidden2'):
            head, leaf = k.split('.')[1:]
            shift = UPRIGHT_6D if (head, leaf) == ('hidden2root', 'bias') else 0
            net[f'rotation_net.{heads[head]}.{leaf}'] = v + shift   # the published root 6D has no offset
        elif k.startswith('rotation_net.graph_block') and k.endswith('.weight') and v.dim() == 3:
            p = k[:-len('weight')]                                    # one GraphConvBlock: weight [J, in, out]
            bn = {n: sd[f'{p}bn.{n}'] for n in ('weight', 'bias', 'running_mean', 'running_var')}
            net.update(fcbn(p, v, sd[f'{p}bias'], bn))
    dec = {k[len('vposer.'):]: v.clone() for k, v in sd.items() if k.startswith('vposer.')}
    if dec:
        net.update(vposer_v1(dec))
    return net


def snapshot(net, epoch=10):
    """{'epoch', 'network' (DataParallel keys), 'optimizer'} as the published save_model writes it."""
    return {'epoch': epoch, 'network': {f'module.{k}': v for k, v in net.items()},
            'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-4, 'params': [0, 1]}]}}


def outputs(model, inputs):
    with torch.no_grad():
        return model(inputs, mode='test')


def assert_same(a, b):
    for k in ('joint_img', 'joint_score', 'pose', 'shape', 'cam_trans', 'mesh_cam', 'joint_proj'):
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=2e-5, msg=k)


@pytest.fixture(scope='module')
def body():
    return get_body_model('neutral', None, VERTICES)


@pytest.fixture(scope='module')
def baseline(tmp_path_factory):
    """A native baseline and the same weights as a published 3DCrowdNet experiment folder."""
    native = randomise(Model(tiny_cfg()), 0)
    exp = tmp_path_factory.mktemp('exp_04-06_23:43')
    (exp / 'checkpoint').mkdir()
    net = {**published_network(native.state_dict()), **smpl_layer()}
    torch.save(snapshot(net), exp / 'checkpoint' / 'snapshot_10.pth.tar')
    return native, exp


def test_baseline_snapshot_evaluates_like_its_weights_loaded_natively(baseline, body, tmp_path):
    """Convert (on load, and once with the tool), evaluate: the outputs of the same weights loaded natively."""
    native, exp = baseline
    model, cfg, ckpt, path = model_from_checkpoint(exp, overrides=BODY)
    assert path.name == 'snapshot_10.pth.tar' and ckpt['epoch'] == 10 and 'optimizer' not in ckpt
    assert (cfg.mode, cfg.edge.type, cfg.model.backbone, cfg.model.input_size) == ('baseline', 'none', 'resnet18', S)
    assert (cfg.model.pose_head, cfg.model.vposer_ckpt) == ('vposer', 'checkpoint')   # no VPoser file needed
    assert not any('fcbn_list' in k or k.startswith(('module.', 'vposer.bodyprior_enc', 'human_model_layer'))
                   for k in ckpt['model'])
    inputs = make_batch(body, 2, S, seed=1)[0]
    assert_same(outputs(model, inputs), outputs(native, inputs))
    # the tool's file is a checkpoint of ours, with the same config and weights
    out = convert_checkpoint.main([str(exp), str(tmp_path / 'converted.pth.tar'), *BODY])
    ckpt2, _ = load_checkpoint(out)
    assert 'published' in ckpt2 and config_of(ckpt2, out) == cfg and ckpt2['model'].keys() == ckpt['model'].keys()
    assert all(torch.equal(ckpt2['model'][k], v) for k, v in ckpt['model'].items())


def test_root_pose_and_vposer_decode_as_the_published_model_does(baseline, body, tmp_path):
    """Independent of our conversion: with the root and pose heads reduced to their biases, the root is the
    published 6D (no offset) of a known rotation, and the body pose is VPoser v1's decode of the code, here
    computed in numpy from the published keys."""
    native, _ = baseline
    net = published_network(native.state_dict())
    angle = 0.7                                                       # about z
    c, s = math.cos(angle), math.sin(angle)
    net['rotation_net.root_pose_out.0.weight'].zero_()
    net['rotation_net.root_pose_out.0.bias'] = torch.tensor([c, -s, s, c, 0.0, 0.0])   # R columns (c,s,0), (-s,c,0)
    z = torch.randn(32, generator=torch.Generator().manual_seed(3))
    net['rotation_net.pose_out.0.weight'].zero_()
    net['rotation_net.pose_out.0.bias'] = z.clone()
    torch.save(snapshot(net), tmp_path / 'snapshot_3.pth.tar')
    model = model_from_checkpoint(tmp_path / 'snapshot_3.pth.tar', overrides=BODY)[0]
    pose = outputs(model, make_batch(body, 2, S, seed=2)[0])['pose'].numpy()
    np.testing.assert_allclose(pose[:, :3], [[0, 0, angle]] * 2, atol=1e-5)

    w = {k.split('.')[2]: (net[f'{k}.weight'].numpy().astype(np.float64), net[f'{k}.bias'].numpy())
         for k in (f'vposer.vposer.bodyprior_dec_{n}' for n in ('fc1', 'fc2', 'out'))}
    lrelu = lambda x: np.where(x > 0, x, 0.2 * x)  # noqa: E731
    x = lrelu(w['bodyprior_dec_fc1'][0] @ z.numpy() + w['bodyprior_dec_fc1'][1])
    x = lrelu(w['bodyprior_dec_fc2'][0] @ x + w['bodyprior_dec_fc2'][1])
    x = (w['bodyprior_dec_out'][0] @ x + w['bodyprior_dec_out'][1]).reshape(21, 3, 2)
    expected = []
    for a in x:                                                      # ContinousRotReprDecoder, then Rodrigues
        b1 = a[:, 0] / np.linalg.norm(a[:, 0])
        b2 = a[:, 1] - b1 @ a[:, 1] * b1
        b2 /= np.linalg.norm(b2)
        expected.append(cv2.Rodrigues(np.stack([b1, b2, np.cross(b1, b2)], 1))[0].ravel())
    np.testing.assert_allclose(pose[0, 3:66], np.concatenate(expected), atol=1e-4)
    np.testing.assert_allclose(pose[:, 66:], 0)                      # hands: zero, as published


def sefd_student(seed=5, gc=False):
    """Native canny student + teacher weights, and the same as a published SEFD student snapshot."""
    cfg = tiny_cfg('mode=student', 'edge.type=canny', 'distill.teacher_ckpt=unused.pth.tar',
                   *(['distill.loss=gc', 'distill.stages=[1,2,3,4]', 'distill.weights=[1,1,1,1]'] if gc else
                     ['distill.loss=log_softmax_l1']))
    student = randomise(Model(cfg), seed)
    teacher = randomise(Model(tiny_cfg('mode=teacher', 'edge.type=smpl_overlap')), seed + 1)
    net = {**published_network(student.state_dict()), **smpl_layer()}
    for k, v in teacher.state_dict().items():
        if k.startswith(('backbone.', 'pose2feat.')):   # smpl_get_model(30): backbone + Pose2Feat, in DataParallel
            net[f'smpl_overlap_backbone.module.{k}'] = v.clone()
    for k, v in student.state_dict().items():
        if k.startswith('distill_loss.blocks.'):
            n, rest = k[len('distill_loss.blocks.'):].split('.', 1)
            net[f'GCBLOCK{n}.{rest}'] = v.clone()       # ContextBlock2d(C, C): conv_mask, channel_add_conv.{0,1,3}
    return student, teacher, net


@pytest.fixture(scope='module')
def student(tmp_path_factory):
    """A SEFD GC_loss student (teacher and Canny module inside) as a published snapshot, and its native parts."""
    native, teacher, net = sefd_student(gc=True)
    net['ced.chshuffle._param_generator.probs'] = torch.tensor([0.75])   # Canny wrapper state: no weights of ours
    folder = tmp_path_factory.mktemp('sefd_student')
    torch.save(snapshot(net, epoch=10), folder / 'snapshot_10.pth.tar')
    return native, teacher, net, folder


def test_sefd_student_with_teacher_and_canny_inside(student, body, tmp_path):
    native, teacher, _, folder = student
    model, cfg, ckpt, path = model_from_checkpoint(folder, overrides=BODY)
    assert (cfg.mode, cfg.edge.type, cfg.model.backbone) == ('student', 'canny', 'resnet18')
    assert (cfg.distill.loss, cfg.distill.stages) == ('gc', [1, 2, 3, 4])
    assert cfg.distill.teacher_ckpt == str(path) and not cfg.distill.init_from_teacher
    assert not any(k.startswith(('smpl_overlap', 'teacher', 'ced', 'GCBLOCK')) for k in ckpt['model'])
    for k, v in native.state_dict().items():
        if k.startswith('distill_loss.'):                            # GCBLOCK<k> -> the GC loss's blocks
            torch.testing.assert_close(model.state_dict()[k], v)
    inputs = make_batch(body, 2, S, seed=4)[0]                       # no 'edge': the student computes its Canny
    assert_same(outputs(model, inputs), outputs(native, inputs))

    # the teacher inside serves as distill.teacher_ckpt: its features are the published teacher's
    t, _, _ = load_teacher(cfg, body)
    edge = (torch.rand(2, 1, S, S, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    x, hm = torch.cat([inputs['img'], edge], 1), teacher.heatmaps(inputs)
    with torch.no_grad():
        for a, b in zip(t.features(x, hm), teacher.features(x, hm)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    # converted once: OUT carries the teacher, and is the student's teacher_ckpt
    out = convert_checkpoint.main([str(path), str(tmp_path / 'sefd_student.pth.tar'), *BODY])
    ckpt2, _ = load_checkpoint(out)
    assert ckpt2['config']['distill']['teacher_ckpt'] == str(out) and set(ckpt2['teacher']['model']) == {
        k for k in teacher.state_dict() if k.startswith(('backbone.', 'pose2feat.'))}


def test_released_sefd_students_distil_log_softmax_l1(student, tmp_path):
    """Without GC blocks (every released student) the loss is SEFD's log_softmax_l1 on stages 3, 4."""
    net = {k: v for k, v in student[2].items() if not k.startswith('GCBLOCK')}
    torch.save(snapshot(net), tmp_path / 'snapshot_10.pth.tar')
    cfg = config_of(*load_checkpoint(tmp_path), BODY)
    assert (cfg.distill.loss, cfg.distill.stages, cfg.distill.weights) == ('log_softmax_l1', [3, 4], [1.0, 2.0])


def test_what_a_published_student_does_not_say_is_asked_for(student, tmp_path):
    """Its file does not name the feature loss of a student without GC blocks: training on from it needs --cfg or
    distill.loss; two edge networks in one snapshot are refused; the teacher inside takes this run's model settings;
    its test crops are made as the published code makes them."""
    from main import train as train_script
    from main.checkpoint import load_teacher
    from main.published_checkpoint import split_network
    net = {k: v for k, v in student[2].items() if not k.startswith('GCBLOCK')}
    torch.save(snapshot(net), tmp_path / 'snapshot_10.pth.tar')
    with pytest.raises(UserError, match='does not record its distillation loss'):
        train_script.main(['--continue', '--exp_dir', str(tmp_path), *BODY, f'output_dir={tmp_path / "out"}'])
    with pytest.raises(UserError, match='holds two edge networks, edge_module and edge_module1'):
        split_network({'edge_module.inc.w': torch.ones(1), 'edge_module1.inc.w': torch.ones(1)}, 'x')
    cfg = config_of(*load_checkpoint(tmp_path), BODY + [f'model.smpl_dir={tmp_path / "smpl"}'])
    teacher, _, _ = load_teacher(cfg)
    assert teacher.cfg.model == cfg.model and teacher.cfg.mode == 'teacher'   # this run's smpl_dir reaches it
    assert cfg.data.crop_convention == 'published'   # evaluated on the published code's crops


def test_edge_networks_inside_a_sefd_student_set_its_edge(student, tmp_path):
    """An edge-only ('nodistil') student holding its edge network; the estimator's weights are kept apart."""
    from main.published_checkpoint import split_network
    for key, edge, inner in (('hed_edge.netVggOne.0.weight', 'hed', 'netVggOne.0.weight'),
                             ('RCF_edge.conv1_1.weight', 'rcf', 'conv1_1.weight'),
                             ('pidinet.module.init_block.weight', 'pidinet', 'init_block.weight'),  # DataParallel
                             ('edge_module1.inc.double_conv.0.weight', 'see', 'inc.double_conv.0.weight')):
        parts, found = split_network({key: torch.ones(2)}, 'x')
        assert (found, list(parts['edge'])) == (edge, [inner])
    net = {k: v for k, v in student[2].items() if not k.startswith(('GCBLOCK', 'smpl_overlap'))}
    net['hed_edge.netVggOne.0.weight'] = torch.ones(64, 3, 3, 3)
    torch.save(snapshot(net), tmp_path / 'snapshot_10.pth.tar')
    ckpt, path = load_checkpoint(tmp_path)
    cfg = ckpt['config']
    assert (cfg['mode'], cfg['edge']['type'], cfg['distill']['loss'], ckpt['edge_net']['type']) == (
        'student', 'hed', 'none', 'hed')
    assert not any(k.startswith('hed_edge') for k in ckpt['model'])


def test_the_tool_gives_a_students_edge_network_its_own_weights_file(student, tmp_path):
    """SEFD's PiDiNet student holds its DataParallel PiDiNet (PDC form); converted, it is edge.weights."""
    from common.edges.base import build_edge
    from common.edges.pidinet import PiDiNet
    pidinet = PiDiNet(converted=False).state_dict()
    net = {k: v for k, v in student[2].items() if not k.startswith(('GCBLOCK', 'smpl_overlap'))}
    net.update({f'pidinet.module.{k}': v for k, v in pidinet.items()})
    torch.save(snapshot(net), tmp_path / 'snapshot_10.pth.tar')
    out = convert_checkpoint.main([str(tmp_path / 'snapshot_10.pth.tar'), str(tmp_path / 'sefd_pidinet.pth.tar'),
                                   *BODY])
    cfg = config_of(*load_checkpoint(out))
    side = tmp_path / 'sefd_pidinet_pidinet_edge.pth'
    assert (cfg.mode, cfg.edge.type, cfg.distill.loss, cfg.edge.weights) == ('student', 'pidinet', 'none', str(side))
    assert torch.load(side)['state_dict'].keys() == pidinet.keys()
    img = torch.rand(1, 3, S, S, generator=torch.Generator().manual_seed(1))
    official = tmp_path / 'table5_pidinet.pth'     # the same weights as PiDiNet's release: 'module.' under state_dict
    torch.save({'state_dict': {f'module.{k}': v for k, v in pidinet.items()}}, official)
    reference = build_edge(dataclasses.replace(cfg.edge, weights=str(official)))
    torch.testing.assert_close(build_edge(cfg.edge)(img), reference(img))


def test_teacher_or_edge_only_student_is_settled_by_the_yaml(body, tmp_path):
    """4 input channels and no teacher inside: a teacher unless the user's --cfg says otherwise."""
    native = randomise(Model(tiny_cfg('mode=teacher', 'edge.type=smpl_overlap')), 11)
    torch.save(snapshot(published_network(native.state_dict())), tmp_path / 'snapshot_14.pth.tar')
    ckpt, path = load_checkpoint(tmp_path)
    cfg = config_of(ckpt, path, BODY)
    assert (cfg.mode, cfg.edge.type) == ('teacher', 'smpl_overlap')
    inputs = make_batch(body, 2, S, in_channels=4, seed=6)[0]
    model = Model(cfg)
    load_model_state(model, ckpt['model'], path)
    assert_same(outputs(model.eval(), inputs), outputs(native, inputs))
    # SEFD's own test file for the edge-only Canny student (3dpw_canny_nodistil_test.yml, its variant keys)
    yml = tmp_path / '3dpw_canny_nodistil_test.yml'
    yml.write_text('testset: PW3D\ntest_batch_size: 16\ndistillation_module: False\ndistillation_pretrained: False\n'
                   'distillation_loss: ""\ndilstillation_edge: ""\ncanny_edge: True\nnothing: True\ndemo: False\n'
                   'origin: True\ninference_testing: True\n')
    cfg = config_of(ckpt, path, BODY, yaml_path=yml)
    assert (cfg.mode, cfg.edge.type, cfg.distill.loss, cfg.test.batch_size) == ('student', 'canny', 'none', 16)


def test_published_resnet50_shapes_give_the_published_config(tmp_path):
    """The released size: ResNet-50, 256 px crops (PositionNet 15*8 outputs), 2048+4 graph inputs."""
    from common.nets.module import RotationNet
    from common.nets.resnet import ResNet
    net = {f'backbone.{k}': v for k, v in ResNet(50).state_dict().items()}
    net.update({'pose2feat.conv.0.weight': torch.zeros(64, 94, 3, 3), 'pose2feat.conv.0.bias': torch.zeros(64)})
    net.update({f'pose2feat.conv.1.{k}': torch.ones(64) for k in ('weight', 'bias', 'running_mean', 'running_var')})
    net.update({'position_net.conv.0.weight': torch.zeros(120, 2048, 1, 1),
                'position_net.conv.0.bias': torch.zeros(120)})
    rot = RotationNet(in_ch=2048, pose_out=32).state_dict()
    net.update(published_network({f'rotation_net.{k}': v for k, v in rot.items()}))
    dec = {'fc1.weight': (512, 32), 'fc1.bias': (512,), 'fc2.weight': (512, 512), 'fc2.bias': (512,),
           'out.weight': (126, 512), 'out.bias': (126,)}
    net.update(vposer_v1({f'bodyprior_dec_{k}': torch.zeros(s) for k, s in dec.items()}))
    torch.save(snapshot(net), tmp_path / 'snapshot_10.pth.tar')
    ckpt, path = load_checkpoint(tmp_path / 'snapshot_10.pth.tar')
    cfg = config_of(ckpt, path, BODY)
    assert (cfg.model.backbone, cfg.model.input_size, cfg.model.pose_head, cfg.mode) == ('resnet50', 256, 'vposer',
                                                                                         'baseline')
    load_model_state(Model(cfg), ckpt['model'], path)


def test_what_is_not_a_published_model_is_one_line(baseline, tmp_path):
    native, _ = baseline
    backbone_only = {f'backbone.{k}': v for k, v in native.backbone.state_dict().items()}
    torch.save(snapshot(backbone_only, epoch=0), tmp_path / 'snapshot_0.pth.tar')   # tool/snapshot_0.pth.tar
    with pytest.raises(UserError, match='model.pretrained') as e:
        load_checkpoint(tmp_path / 'snapshot_0.pth.tar')
    assert '\n' not in str(e.value)
    net = published_network(native.state_dict())
    net['some_head.weight'] = torch.zeros(3)
    torch.save(snapshot(net), tmp_path / 'other.pth.tar')
    with pytest.raises(UserError, match="'some_head.weight'"):
        load_checkpoint(tmp_path / 'other.pth.tar')



def test_train_continues_from_a_published_folder(baseline, tmp_path):
    """--continue --exp_dir <published 3DCrowdNet folder>: its weights start a new experiment at epoch 11, here a
    teacher (conv1 inflated from RGB to RGB + edge)."""
    from main import train as train_script
    native, exp = baseline
    out = train_script.main(['--continue', '--exp_dir', str(exp), '--cfg', 'assets/yaml/tiny_cpu.yml', *TINY,
                             'mode=teacher', 'edge.type=smpl_overlap', 'data.train_sets_3d=[BodySamples]',
                             f'output_dir={tmp_path}', 'train.end_epoch=12', 'train.max_iters=1', 'train.vis_every=0',
                             'train.lr=0', 'train.lr_backbone=0'])
    assert [p.name for p in (out / 'checkpoint').iterdir()] == ['snapshot_11.pth.tar']
    sd = torch.load(out / 'checkpoint' / 'snapshot_11.pth.tar', map_location='cpu', weights_only=False)['model']
    w = sd['backbone.conv1.weight']
    assert w.shape[1] == 4 and torch.equal(w[:, :3], native.state_dict()['backbone.conv1.weight'])  # lr 0: as loaded
    assert torch.equal(sd['rotation_net.hidden2cam.weight'], native.state_dict()['rotation_net.hidden2cam.weight'])
    assert 'started from the weights of' in (out / 'log' / 'train.log').read_text()
