"""The SEFD method end to end: a frozen teacher distilled into a student, exact resume after SIGKILL, DDP on CPU,
a dying rank, the teacher -> student -> test chain, and the one-line errors of train.py / test.py."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from common.body.body_samples import make_batch
from common.body.smpl import get_body_model
from common.errors import UserError
from common.paths import ROOT
from main.config import load_config
from main.model import Model
from main.trainer import make_optimizer, optimize
from tests import fixtures

TINY = ['model.backbone=resnet18', 'model.procedural_vertices=800', 'model.input_size=64']


@pytest.fixture(scope='module')
def body():
    return get_body_model('neutral', None, 800)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """A tiny synthetic set: 6 training people (2 images), 3 test and 3 validation people."""
    root = tmp_path_factory.mktemp('data')
    images = root / 'Synthetic' / 'imageFiles'
    fixtures.write_pw3d(root / 'Synthetic', num_images=2, split='train', image_root=images, sequence='synth_train_00')
    fixtures.write_pw3d(root / 'Synthetic', num_images=1, split='test', image_root=images, sequence='synth_test_00',
                        seed=1)
    fixtures.write_pw3d(root / 'Synthetic', num_images=1, split='validation', image_root=images,
                        sequence='synth_val_00', seed=2)
    return root


def student_batch(body, n=2):
    inputs, targets, meta = make_batch(body, n, 64, in_channels=4, seed=1)
    inputs['teacher_edge'] = inputs.pop('edge')
    return inputs, targets, meta


# ---------------------------------------------------------------------------------------------- the student
@pytest.mark.parametrize('loss, learned', [('log_softmax_l1', ()), ('gc', ('distill_loss.',)),
                                           ('kd', ('loss_weighting.',))])
def test_only_the_student_learns(body, loss, learned):
    torch.manual_seed(0)
    teacher = Model(load_config(None, TINY + ['mode=teacher', 'edge.type=smpl_overlap']), body)
    weighting = ['distill.loss_weighting=uncertainty'] if 'loss_weighting.' in learned else []
    cfg = load_config(None, TINY + ['mode=student', 'edge.type=canny', f'distill.loss={loss}',
                                    'distill.teacher_ckpt=unused'] + weighting)
    student = Model(cfg, body, teacher=teacher).train()
    assert not teacher.training and all(not p.requires_grad for p in teacher.parameters())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    opt = make_optimizer(student, cfg)
    optimised = {id(p) for g in opt.param_groups for p in g['params']}
    assert not optimised & {id(p) for p in teacher.parameters()}
    inputs, targets, meta = student_batch(body)
    total, terms = student(inputs, targets, meta, 'train')
    assert any(k.startswith('distill_') for k in terms)
    optimize(total, student, opt, torch.amp.GradScaler('cpu', enabled=False))
    optimize(student(inputs, targets, meta, 'train')[0], student, opt, torch.amp.GradScaler('cpu', enabled=False))
    # the teacher is bit-identical (weights and BatchNorm statistics), never in the student's state dict
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())
    sd = student.state_dict()
    assert not any(k.startswith(('teacher', 'edge')) for k in sd)
    assert student.backbone.conv1.weight.grad is not None
    for prefix in learned:  # gc blocks / loss weights: optimised and saved with the student
        params = [p for n, p in student.named_parameters() if n.startswith(prefix)]
        assert params and all(p.grad is not None and id(p) in optimised for p in params)
        assert any(k.startswith(prefix) for k in sd)


def test_student_sees_its_own_edge_and_teacher_the_overlap_edge(body):
    """The teacher's features come from img + teacher_edge, the student's from img + its Canny map."""
    from common.edges.canny import canny_edge_map
    teacher = Model(load_config(None, TINY + ['mode=teacher', 'edge.type=smpl_overlap']), body).eval()
    cfg = load_config(None, TINY + ['mode=student', 'edge.type=canny', 'distill.loss=l1', 'distill.teacher_ckpt=x'])
    student = Model(cfg, body, teacher=teacher).eval()
    inputs, _, _ = student_batch(body)
    out = student(inputs, mode='test')
    torch.testing.assert_close(out['edge'], canny_edge_map(inputs['img'], dilation=5))
    hm = student.heatmaps(inputs)
    expected = teacher.features(torch.cat([inputs['img'], inputs['teacher_edge']], 1), hm)
    got = student.teacher_features(inputs, hm)
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_teacher_of_another_architecture_is_one_line(body, tmp_path):
    from main.checkpoint import load_teacher, save_checkpoint
    tcfg = load_config(None, TINY + ['mode=teacher', 'edge.type=smpl_overlap', 'model.backbone=resnet34'])
    path = save_checkpoint(tmp_path / 't.pth.tar', {'model': Model(tcfg, body).state_dict(), 'config': tcfg.to_dict(),
                                                     'epoch': 0})
    cfg = load_config(None, TINY + ['mode=student', 'edge.type=canny', 'distill.loss=l1', f'distill.teacher_ckpt={path}'])
    with pytest.raises(UserError, match='expected model.backbone=resnet18 .* found resnet34'):
        load_teacher(cfg, body)
    base = load_config(None, TINY)
    path = save_checkpoint(tmp_path / 'b.pth.tar', {'model': Model(base, body).state_dict(), 'config': base.to_dict(),
                                                     'epoch': 0})
    cfg = load_config(None, TINY + ['mode=student', 'edge.type=canny', 'distill.loss=l1', f'distill.teacher_ckpt={path}'])
    with pytest.raises(UserError, match='is a baseline model'):
        load_teacher(cfg, body)


# ---------------------------------------------------------------------------------------------- CLI helpers
def run(script, args, **kw):
    return subprocess.run([sys.executable, script] + args, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


def tiny_run(data_root, out, *extra):
    return ['--cfg', 'assets/yaml/tiny_cpu.yml', f'data.root={data_root}', f'output_dir={out}', 'train.batch_size=2',
            'train.vis_every=0', *extra]


def state(exp, name):
    return torch.load(exp / 'checkpoint' / name, map_location='cpu', weights_only=False)['model']


# ---------------------------------------------------------------------------------------------- exact resume
@pytest.mark.slow
def test_sigkill_then_continue_equals_an_uninterrupted_run(data_root, tmp_path):
    args = ['model.input_size=64', 'train.end_epoch=3', 'train.ckpt_every=2', 'data.num_workers=1',
            'train.deterministic=true', 'train.print_freq=1']
    r = run('main/train.py', tiny_run(data_root, tmp_path / 'a', *args))
    assert r.returncode == 0, r.stderr[-2000:]
    (a,) = (tmp_path / 'a').iterdir()

    proc = subprocess.Popen([sys.executable, 'main/train.py'] + tiny_run(data_root, tmp_path / 'b', *args), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / 'b').glob('*/checkpoint/*.pth.tar')) and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.uniform(0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'the run ended before it could be killed'
    (b,) = (tmp_path / 'b').iterdir()
    r = run('main/train.py', ['--continue', '--exp_dir', str(b)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'resumed from' in (b / 'log' / 'train.log').read_text()
    final_a, final_b = state(a, 'snapshot_2.pth.tar'), state(b, 'snapshot_2.pth.tar')
    assert final_a.keys() == final_b.keys()
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    assert not list((b / 'checkpoint').glob('.*.tmp'))  # no half-written file left


# ---------------------------------------------------------------------------------------------- DDP
@pytest.mark.slow
def test_two_gloo_ranks_stay_identical_and_match_one_process(data_root, tmp_path):
    """2 ranks x batch 2 under torchrun: parameters identical on both ranks, and equal (to float summation order)
    to one process that averages the gradients of the same two shards, with the same samples and augmentation.
    (One process with a plain batch of 4 would differ: BatchNorm normalises each rank's shard by its own statistics.)"""
    over = TINY + [f'data.root={data_root}', 'train.end_epoch=2', 'train.batch_size=2', 'train.vis_every=0',
                   'train.ckpt_every=0', 'data.num_workers=0']
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2', '-m', 'tests.ddp_train',
                        str(tmp_path)] + over, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [torch.load(tmp_path / f'rank{k}.pt') for k in (0, 1)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])

    # the same per-rank arithmetic: torchrun runs each rank with OMP_NUM_THREADS=1, and BatchNorm after the
    # reference's tiny-weight convolutions makes their gradients sensitive to the order of float sums
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = shard_averaged_run(load_config('assets/yaml/tiny_cpu.yml', over), torch.load(tmp_path / 'init.pt'))
    finally:
        torch.set_num_threads(threads)
    for n, p in reference.named_parameters():
        torch.testing.assert_close(ranks[0][n], p.detach(), rtol=1e-5, atol=1e-7, msg=n)


def shard_averaged_run(cfg, init):
    """One process doing what 2 DDP ranks should: per epoch, the gradients of each rank's batch, averaged."""
    from data.dataset import build_train_dataset
    from data.loader import EpochSampler, SeededSamples
    from main.trainer import set_lr
    model = Model(cfg)
    model.load_state_dict(init, strict=False)
    opt = make_optimizer(model, cfg)
    data = SeededSamples(build_train_dataset(cfg))
    samplers = [EpochSampler(len(data), cfg.train.seed, rank, 2) for rank in (0, 1)]
    collate = torch.utils.data.default_collate
    for epoch in range(cfg.train.end_epoch):
        set_lr(opt, epoch, cfg, epoch)
        grads = []
        for s in samplers:
            s.set_epoch(epoch)
            inputs, targets, meta = collate([data[i] for i in list(s)[:cfg.train.batch_size]])
            model.zero_grad()
            model(inputs, targets, meta, 'train')[0].backward()
            grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        for n, p in model.named_parameters():
            if n in grads[0]:
                p.grad = (grads[0][n] + grads[1][n]) / 2
        opt.step()
    return model


def _pids_with(marker, rank):
    pids = []
    for d in Path('/proc').iterdir():
        try:
            if d.name.isdigit() and marker in (d / 'cmdline').read_bytes().decode(errors='ignore') and \
                    f'RANK={rank}\0'.encode() in (d / 'environ').read_bytes() and \
                    b'LOCAL_RANK' in (d / 'environ').read_bytes():
                pids.append(int(d.name))
        except OSError:
            pass
    return pids


@pytest.mark.slow
def test_a_dying_rank_ends_the_job_naming_it(tmp_path):
    out = tmp_path / 'job'
    proc = subprocess.Popen([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2', 'main/train.py',
                             '--cfg', 'assets/yaml/tiny_cpu.yml', 'data.train_sets_3d=[BodySamples]', f'output_dir={out}',
                             'train.end_epoch=1000', 'train.vis_every=0', 'train.print_freq=1'],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list(out.glob('*/log/train.log')) or 'itr' not in next(out.glob('*/log/train.log')).read_text():
        assert time.time() < deadline and proc.poll() is None, 'training did not start'
        time.sleep(0.1)
    (victim,) = _pids_with(str(out), 1)
    os.kill(victim, signal.SIGKILL)
    t0 = time.time()
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and time.time() - t0 < 90
    assert 'rank: 1' in output or 'rank 1' in output, output[-2000:]


# ---------------------------------------------------------------------------------------------- the chain
@pytest.mark.slow
def test_teacher_student_test_chain(data_root, tmp_path):
    """Teacher -> distilled students (Canny in the model, and OpenCV Canny in the loader workers) -> an edge-only
    student -> test.py on each, through the command lines researchers use."""
    from main import test as test_script
    from main import train as train_script
    common = ['--cfg', 'assets/yaml/tiny_cpu.yml', f'data.root={data_root}', f'output_dir={tmp_path}',
              'train.batch_size=2', 'train.max_iters=2', 'train.vis_every=1', 'data.test_set=Synthetic']
    teacher = train_script.main(common + ['--exp_name', 'teacher', 'mode=teacher', 'edge.type=smpl_overlap',
                                          'train.val_every=1'])
    best = torch.load(teacher / 'checkpoint' / 'best.pth.tar', map_location='cpu', weights_only=False)
    assert best['epoch'] == 0 and best['best_mpjpe'] > 0   # validated after epoch 0, kept as the best so far
    assert 'validation after epoch 0' in (teacher / 'log' / 'train.log').read_text()
    runs = {'kornia': ['distill.loss=log_softmax_l1'],
            'opencv': ['distill.loss=gc', 'edge.canny_impl=opencv', 'data.num_workers=1'],
            'nodistil': ['distill.loss=none']}
    tsd = state(teacher, 'snapshot_0.pth.tar')
    for name, extra in runs.items():
        exp = train_script.main(common + ['--exp_name', name, 'mode=student', 'edge.type=canny',
                                          f'distill.teacher_ckpt={teacher}'] + extra)
        sd = state(exp, 'snapshot_0.pth.tar')
        assert not any(k.startswith('teacher') for k in sd)
        assert sd['backbone.conv1.weight'].shape[1] == 4
        assert not torch.equal(sd['backbone.conv1.weight'], tsd['backbone.conv1.weight'])  # it trained
        assert list((exp / 'tb').iterdir())
        result = test_script.main(['--exp_dir', str(exp), '--test_epoch', '0'])
        saved = json.loads((exp / 'result' / 'metrics_Synthetic_0.json').read_text())
        assert saved['count'] == 3 and saved['summary'] == pytest.approx(result.summary)
        assert set(saved['groups']) == {'people'}
    log = (tmp_path / next(p.name for p in tmp_path.iterdir() if p.name.startswith('kornia')) / 'log' / 'train.log')
    assert 'student initialised from the teacher' in log.read_text() and 'distill_log_softmax_l1_s4' in log.read_text()


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.slow
def test_bad_input_is_one_line_and_leaves_no_folder(data_root, tmp_path):
    out = tmp_path / 'out'
    torch.save({'features.0.weight': torch.zeros(8, 3, 3, 3)}, tmp_path / 'vgg.pth')   # another network's weights
    cases = [
        (tiny_run(data_root, out, f'model.pretrained={tmp_path / "vgg.pth"}'), 'none of its tensors fits'),
        (['--continue'], '--continue needs the experiment'),
        (['--continue', '--exp_dir', str(tmp_path)], 'nothing to continue'),
        (tiny_run(data_root, out, 'mode=student', 'edge.type=canny', 'distill.loss=l1'), 'needs distill.teacher_ckpt'),
        (tiny_run(data_root, out, 'mode=student', 'edge.type=canny', 'distill.loss=l1',
                  f'distill.teacher_ckpt={tmp_path / "missing.pth.tar"}'), 'missing.pth.tar does not exist'),
        (tiny_run(data_root, out, 'data.train_sets_3d=[Nope]'), "unknown dataset 'Nope'"),
        (['--gpu', 'zero'], "--gpu 'zero'"),
    ]
    for args, message in cases:
        r = run('main/train.py', args)
        assert r.returncode == 2 and message in r.stderr and r.stderr.strip().count('\n') == 0, (args, r.stderr[-1500:])
    assert not out.exists() or not any(out.iterdir())
    r = run('main/test.py', [])
    assert r.returncode == 2 and '--ckpt' in r.stderr and r.stderr.strip().count('\n') == 0
    r = run('main/test.py', ['--exp_dir', str(tmp_path), '--test_epoch', '4'])
    assert r.returncode == 2 and 'snapshot_4.pth.tar not found' in r.stderr


def test_the_experiment_lock_is_held_while_the_block_runs(tmp_path):
    from main.train import lock_experiment
    probe = [sys.executable, '-c', 'import fcntl, sys; fcntl.lockf(open(sys.argv[1], "a"), fcntl.LOCK_EX | fcntl.LOCK_NB)',
             str(tmp_path / '.lock')]   # another process trying to take it
    with lock_experiment(tmp_path):
        assert subprocess.run(probe, capture_output=True).returncode != 0
    assert subprocess.run(probe, capture_output=True).returncode == 0
    with pytest.raises(KeyError):      # released when the training fails too
        with lock_experiment(tmp_path):
            raise KeyError('a bug')
    assert subprocess.run(probe, capture_output=True).returncode == 0
    hold = 'import fcntl, sys; f = open(sys.argv[1], "a"); fcntl.lockf(f, fcntl.LOCK_EX); print(1, flush=True); input()'
    held = subprocess.Popen([sys.executable, '-c', hold, probe[3]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert held.stdout.readline().strip() == '1'
        with pytest.raises(UserError, match='is being trained by another process') as info:
            with lock_experiment(tmp_path):
                pass
        assert isinstance(info.value.__cause__, OSError)
    finally:
        held.kill()
        held.wait()
    with lock_experiment(tmp_path):     # SIGKILL of the holder released it
        pass


@pytest.mark.slow
def test_continue_applies_a_changed_learning_rate_refuses_a_second_process_and_says_when_done(data_root, tmp_path):
    r = run('main/train.py', tiny_run(data_root, tmp_path, 'model.input_size=64', 'train.end_epoch=1',
                                      'train.ckpt_every=0', 'train.val_every=0', 'data.num_workers=0'))
    assert r.returncode == 0, r.stderr[-2000:]
    (exp,) = tmp_path.iterdir()
    r = run('main/train.py', ['--continue', '--exp_dir', str(exp)])   # finished: says so, trains nothing
    assert r.returncode == 0 and 'nothing to train' in r.stdout + r.stderr, r.stderr[-2000:]
    import fcntl
    with open(exp / '.lock', 'a') as held:   # another process trains this experiment
        fcntl.lockf(held, fcntl.LOCK_EX)
        r = run('main/train.py', ['--continue', '--exp_dir', str(exp), 'train.end_epoch=2'])
    assert r.returncode == 2 and 'is being trained by another process' in r.stderr, r.stderr[-2000:]
    r = run('main/train.py', ['--continue', '--exp_dir', str(exp), 'train.end_epoch=2', 'train.lr=0.5',
                              'train.lr_dec_epochs=[5]'])
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'train.lr 0.001 in' in (exp / 'log' / 'train.log').read_text()
    ckpt = torch.load(exp / 'checkpoint' / 'snapshot_1.pth.tar', map_location='cpu', weights_only=True)
    heads = next(g for g in ckpt['optimizer']['param_groups'] if g['name'] == 'heads')
    assert heads['base_lr'] == heads['lr'] == 0.5 and ckpt['config']['train']['lr'] == 0.5


@pytest.mark.slow
def test_sigterm_before_the_first_checkpoint_is_one_line_and_leaves_nothing(tmp_path):
    data = tmp_path / 'data'
    fixtures.write_pw3d(data / 'Synthetic', num_images=20, split='train', image_root=data / 'Synthetic/imageFiles',
                        sequence='synth_train_00')   # 60 people: an epoch of seconds, its snapshot at the end
    out = tmp_path / 'out'
    proc = subprocess.Popen([sys.executable, 'main/train.py'] + tiny_run(data, out, 'train.val_every=0',
                                                                          'train.ckpt_every=0', 'data.num_workers=0'),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(out.glob('*/log/train.log')) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert not list(out.glob('*/checkpoint/*.pth.tar')), 'the first checkpoint came before the signal'
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == 'terminated (SIGTERM)', err[-1500:]
    assert 'Traceback' not in err and not out.exists()   # the experiment folder without a checkpoint is gone, and
    # the output folder the run made for it
