"""The baseline model on CPU: outputs, 4-channel input, overfitting a few samples, the training loop."""
import math
import subprocess
import sys

import pytest
import torch

from common.body.body_samples import make_batch
from common.body.smpl import get_body_model
from common.errors import UserError
from common.metrics import mpvpe
from common.paths import ROOT
from main.checkpoint import latest_checkpoint, load_checkpoint
from main.config import load_config
from main.model import Body, Head, Model
from main.trainer import make_optimizer, set_lr

TINY = ['model.backbone=resnet18', 'model.procedural_vertices=800']


@pytest.fixture(scope='module')
def body():
    return get_body_model('neutral', None, 800)


def test_outputs_and_losses(body):
    cfg = load_config(None, TINY + ['model.input_size=64'])
    model = Model(cfg, body)
    inputs, targets, meta = make_batch(body, 2, 64)
    total, losses = model(inputs, targets, meta, 'train')
    assert set(losses) == {'smpl_root', 'body_joint_img', 'smpl_joint_img', 'smpl_pose', 'smpl_shape', 'body_joint_proj',
                           'body_joint_cam', 'smpl_joint_cam'}    # the default camera is solved: no cam_prior
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    w = cfg.train.loss_weights
    torch.testing.assert_close(total, sum(v * getattr(w, k) for k, v in losses.items()))
    # the published losses: every task term weighted 1, no camera prior
    cfg = load_config(None, TINY + ['model.input_size=64', 'model.camera=published', 'train.loss_weights.smpl_root=1'])
    total, losses = Model(cfg, body)(inputs, targets, meta, 'train')
    assert 'cam_prior' not in losses
    torch.testing.assert_close(total, sum(losses.values()))
    out = model.eval()(inputs, mode='test')
    V = body.num_vertices
    assert out['mesh_cam'].shape == (2, V, 3) and out['joint_cam'].shape == (2, 30, 3)
    assert out['joint_img'].shape == (2, 15, 3) and out['joint_proj'].shape == (2, 30, 2)
    assert out['pose'].shape == (2, 72) and out['shape'].shape == (2, 10)
    # root-relative outputs: the SMPL-30 pelvis is at the origin
    assert out['joint_cam'][:, 0].abs().max() < 1e-6
    # the body model is a constant of the run, not saved in checkpoints
    assert not any(k.startswith('body_model.') for k in model.state_dict())


def test_four_channel_input(body):
    cfg = load_config(None, TINY + ['model.input_size=64', 'mode=teacher', 'edge.type=smpl_overlap'])
    model = Model(cfg, body).eval()
    assert model.backbone.conv1.weight.shape[1] == 4
    inputs, _, _ = make_batch(body, 2, 64, in_channels=4)
    out = model(inputs, mode='test')
    assert out['mesh_cam'].shape[0] == 2


@pytest.mark.slow
def test_overfit_few_samples(body):
    """The baseline memorises 4 fixed samples (no augmentation): mesh error far below 20 mm. Measured on a 2-core CPU:
    MPVPE ~187 mm untrained (eval mode) -> 1.8 mm after 250 steps (5.0 with model.camera=centred; train-mode
    BatchNorm, i.e. the statistics of these 4 samples; eval mode adds the running-statistics gap of a 4-sample batch).
    Asserted: < 15 mm and 10x below the start. Before the fixes of docs/findings.md the same test stopped at ~77 mm."""
    torch.manual_seed(0)
    cfg = load_config(None, TINY + ['model.input_size=64', 'train.lr=3e-4', 'train.lr_backbone=3e-4'])
    model = Model(cfg, body)
    opt = make_optimizer(model, cfg)
    inputs, targets, meta = make_batch(body, 4, 64, seed=3)

    def mesh_error():
        with torch.no_grad():
            return float(mpvpe(model(inputs, mode='test')['mesh_cam'], targets['mesh_cam'], scale=1000).mean())

    model.eval()
    before = mesh_error()
    model.train()
    for it in range(250):
        if it == 170:  # a step decay gets past the noise floor of Adam on L1 terms
            for g in opt.param_groups:
                g['lr'] /= 10
        opt.zero_grad()
        total, _ = model(inputs, targets, meta, 'train')
        total.backward()
        opt.step()
    after = mesh_error()
    assert after < 15 and after < before / 10, (before, after)


@pytest.mark.parametrize('root_px,depth', [((32, 34), 220.0), ((30, 70), 80.0)], ids=['whole', 'head_and_shoulders'])
def test_solved_camera_lays_the_body_on_its_input_pose(body, root_px, depth):
    """model.camera=anchored (the default): a model that answers the upright rest body, given that body's projection as
    its input pose (the joints inside the crop), projects those joints back onto it, also for a close-up whose crop
    shows only head, shoulders and arms: the body at the person's size, not a small whole body in an upper-body crop."""
    from common.body.joint_sets import SMPL30
    cfg = load_config(None, TINY + ['model.input_size=64'])
    model = Model(cfg, body).eval()
    rn = model.rotation_net
    for layer in (rn.hidden2root, rn.hidden2pose, rn.hidden2shape):   # the answer: upright, rest pose, mean shape
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    pose = torch.zeros(1, 72)
    pose[0, 0] = math.pi
    _, joints = body(pose, torch.zeros(1, 10), None)
    f, S = cfg.model.focal[0], 64
    cam = joints[0] - joints[0, SMPL30.root_idx] + torch.tensor([(root_px[0] - S / 2) * depth / f,
                                                                 (root_px[1] - S / 2) * depth / f, depth])
    uv = f * cam[:, :2] / cam[:, 2:] + S / 2                                   # crop px
    detected = [SMPL30.index(n) for n in ('Nose', 'L_Ear', 'R_Ear', 'L_Shoulder', 'R_Shoulder', 'L_Elbow', 'R_Elbow',
                                          'L_Wrist', 'R_Wrist', 'Pelvis', 'L_Hip', 'R_Hip', 'L_Knee', 'R_Knee',
                                          'L_Ankle', 'R_Ankle')]
    mask = torch.zeros(len(SMPL30), dtype=torch.bool)
    mask[detected] = True
    mask &= ((uv >= 0) & (uv < S)).all(1)
    assert mask[SMPL30.index('L_Shoulder')] and (mask[SMPL30.index('L_Hip')] == (depth > 100))
    inputs = {'img': torch.rand(1, 3, S, S), 'joints': (uv / 4)[None], 'joints_mask': mask[None, :, None].float()}
    with torch.no_grad():
        out = model(inputs, mode='test')
    err = (out['joint_proj'][0] - uv / 4)[mask].norm(dim=1)                    # heatmap px
    assert err.max() < 0.25, err      # 1 crop px; weak perspective neglects the body's relief (~0.5% at these depths)


@pytest.mark.parametrize('root_loss', ['matrix', 'axis_angle'])
def test_root_loss_near_pi(body, root_loss):
    """An upright person's root rotation has angle ~pi, where axis-angle jumps between +axis and -axis for
    nearly equal rotations: the matrix loss sees two rotations 0.02 rad apart as close, the reference's
    axis-angle L1 as ~2 pi apart."""
    from common.geometry.transforms import axis_angle_to_matrix
    cfg = load_config(None, TINY + ['model.input_size=64', f'train.root_loss={root_loss}'])
    model = Model(cfg, body)
    inputs, targets, meta = make_batch(body, 1, 64)
    eps = 0.01
    pred_aa = torch.tensor([[math.pi - eps, 0.0, 0.0]])            # about +x
    targets['pose_param'] = torch.zeros(1, 72)
    targets['pose_param'][0, :3] = torch.tensor([-(math.pi - eps), 0.0, 0.0])   # about -x: 2 eps away
    pose = targets['pose_param'].clone()
    pose[:, :3] = pred_aa
    zeros = lambda *s: torch.zeros(*s)  # noqa: E731
    head = Head(zeros(1, 15, 3), zeros(1, 15, 1), pose, zeros(1, 10), zeros(1, 3), axis_angle_to_matrix(pred_aa))
    body = Body(None, zeros(1, 30, 3), None, zeros(1, 30, 2), zeros(1, 3))
    losses = model.losses(head, body, targets, meta)
    if root_loss == 'matrix':
        assert losses['smpl_pose'].abs().max() == 0
        assert 0 < losses['smpl_root'].sum() < 9 * 2 * eps
    else:
        assert 'smpl_root' not in losses and losses['smpl_pose'][0, 0] > 6


def test_lr_schedule_keeps_group_ratio(body):
    cfg = load_config(None, TINY + ['train.lr=1e-3', 'train.lr_backbone=1e-4', 'train.lr_dec_epochs=[2,4]'])
    opt = make_optimizer(Model(cfg, body), cfg)
    assert [g['name'] for g in opt.param_groups] == ['backbone', 'heads']
    assert set_lr(opt, 0, cfg) == pytest.approx([1e-4, 1e-3])
    assert set_lr(opt, 2, cfg) == pytest.approx([1e-5, 1e-4])
    assert set_lr(opt, 5, cfg) == pytest.approx([1e-6, 1e-5])


def _train(args, cwd=ROOT):
    return subprocess.run([sys.executable, 'main/train.py'] + args, cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_train_cli_runs_saves_and_resumes(tmp_path):
    common = ['--cfg', 'assets/yaml/tiny_cpu.yml', f'output_dir={tmp_path}', 'data.train_sets_3d=[BodySamples]',
              'train.max_iters=2', 'exp_name=smoke']
    r = _train(common + ['train.end_epoch=1'])
    assert r.returncode == 0, r.stderr[-2000:]
    (exp,) = tmp_path.iterdir()
    ckpt0, _ = load_checkpoint(exp)
    assert ckpt0['epoch'] == 0 and set(ckpt0) >= {'model', 'optimizer', 'scaler', 'config'}
    # continue: epoch 1 is trained in the same folder, optimizer state carried over
    r = _train(['--continue', '--exp_dir', str(exp), 'train.end_epoch=2'])
    assert r.returncode == 0, r.stderr[-2000:]
    assert latest_checkpoint(exp).name == 'snapshot_1.pth.tar'
    ckpt1, _ = load_checkpoint(exp)
    assert ckpt1['optimizer']['state'][0]['step'] == 2 * ckpt0['optimizer']['state'][0]['step']
    assert (exp / 'log' / 'train.log').read_text().count('resumed from') == 1


def test_train_cli_bad_input_is_one_line(tmp_path):
    r = _train(['--cfg', 'assets/yaml/tiny_cpu.yml', 'train.lrr=1'])
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0 and "did you mean 'train.lr'" in r.stderr
    bad = tmp_path / 'snapshot_0.pth.tar'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(UserError, match='snapshot_0.pth.tar'):
        load_checkpoint(bad)


def test_nan_loss_is_reported(body, tmp_path):
    from data.BodySamples.BodySamples import BodySamples
    from main.trainer import Trainer
    cfg = load_config(None, TINY + ['model.input_size=64', 'data.num_workers=0', 'train.batch_size=2'])
    tr = Trainer(cfg, tmp_path, BodySamples(cfg, length=4), torch.device('cpu'))
    inputs, targets, meta = make_batch(body, 2, 64)
    targets['pose_param'][0, 5] = float('nan')
    with pytest.raises(UserError, match='non-finite terms: smpl_pose'):
        tr.step(inputs, targets, meta)


@pytest.mark.slow
def test_two_process_ddp_on_cpu_writes_one_experiment(tmp_path):
    """torchrun with two gloo processes: rank 0 makes the folder, every rank trains its shard, one checkpoint."""
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2', 'main/train.py',
                        '--cfg', 'assets/yaml/tiny_cpu.yml', 'data.train_sets_3d=[BodySamples]', f'output_dir={tmp_path}',
                        'train.max_iters=2'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (exp,) = tmp_path.iterdir()
    assert [p.name for p in (exp / 'checkpoint').iterdir()] == ['snapshot_0.pth.tar']
    assert '2 process(es)' in (exp / 'log' / 'train.log').read_text()
