"""Wrong, hostile and interrupted input, one test per rule: every config number checked in one place; a folder the
user names checked before anything in it is deleted; a regeneration swapped in only when complete; where a run writes
decided by the command line and kept inside its root; an OS error, whatever the library calls it, one line naming
the path; each person evaluated once, from data that agrees with its annotation; files from outside read with
bounds; weights that cannot be used refused at load."""
import contextlib
import dataclasses
import json
import math
import re
import resource
import signal
import subprocess
import sys
import time
import typing
import zipfile

import cv2
import numpy as np
import pytest
import torch

from common.errors import UserError
from common.paths import ROOT
from main.config import Config, load_config
from tests import fixtures

TINY = ['model.backbone=resnet18', 'model.procedural_vertices=800', 'model.input_size=64']
SYNTH = ['--width', '64', '--height', '96', '--seq-len', '2', '--workers', '0', '--contact-count', '1',
         '--no-progress']   # tool/make_data/make_synthetic.py, tiny


# ---------------------------------------------------------------------------------------------- the config
def numeric_keys(obj=None, prefix=''):
    """{key: item type} of every int / float config key and of every list or tuple of them, from the dataclasses'
    annotations (independently of the checker's own table)."""
    obj, out = obj or Config(), {}
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, tp = getattr(obj, f.name), hints[f.name]
        if dataclasses.is_dataclass(value):
            out.update(numeric_keys(value, f'{prefix}{f.name}.'))
            continue
        item = typing.get_args(tp)[0] if typing.get_origin(tp) in (list, tuple) else tp
        if item in (int, float):
            out[prefix + f.name] = (item, typing.get_origin(tp) in (list, tuple))
    return out


def test_every_config_number_is_checked_for_type_finiteness_and_range():
    keys = numeric_keys()
    assert len(keys) > 35 and 'train.loss_weights.smpl_root' in keys and 'model.focal' in keys
    for key, (item, is_list) in keys.items():
        value = Config()
        for part in key.split('.'):
            value = getattr(value, part)
        n = max(len(value), 1) if is_list else 1
        as_value = lambda raw: f'[{", ".join([raw] * n)}]' if is_list else raw  # noqa: E731
        for raw in ('.nan', '.inf', '-.inf', '-1000000000', '1000000000000'):
            try:
                load_config(None, [f'{key}={as_value(raw)}'])
            except UserError as e:
                msg = str(e)
                assert '\n' not in msg and key in msg, (key, raw, msg)
                fix = re.search(r'closest valid value is (\S+)$', msg)
                if fix:   # the value it suggests passes the key's own check (another key's may object: canny)
                    try:
                        load_config(None, [f'{key}={as_value(fix.group(1))}'])
                    except UserError as again:
                        assert 'closest valid value' not in str(again), (key, raw, msg, str(again))
                continue
            assert raw == '1000000000000', f'{key}={as_value(raw)} was accepted'   # large but finite may be fine
    # the values that broke runs before, each refused in one line
    for override in ('train.print_freq=0', 'train.lr_dec_factor=0', 'train.lr_dec_factor=-10', 'train.max_iters=-1',
                     'train.val_every=-1', f'train.seed={2 ** 40}', 'model.input_size=100000', 'train.grad_clip=-1',
                     'train.loss_weights.smpl_pose=-1', 'train.warmup_iters=-5', 'train.ckpt_every=-1'):
        with pytest.raises(UserError, match=re.escape(override.split('=')[0])):
            load_config(None, [override])
    # the tools' numeric flags, by the same check
    from tool.experiments import train_edge
    from tool.make_data import make_overlap_edges, make_synthetic
    for parse, base, flags, floats in (
            (train_edge.parse_args, ['--edge', 'see'], ('--save-every', '--max-test', '--eval-every', '--workers',
                                                        '--seed', '--batch'), ('--lr', '--weight-decay')),
            (lambda a: make_synthetic.validate(make_synthetic.parse_args(a)), [],
             ('--seed', '--workers', '--seq-len', '--contact-count'), ('--pose-noise', '--detector-noise')),
            (make_overlap_edges.parse_args, ['--dataset', 'PW3D'], ('--limit', '--workers', '--vertices'), ())):
        for flag, value in [(f, '-1000000000') for f in flags + floats] + [(f, 'nan') for f in floats]:
            with pytest.raises(UserError, match=re.escape(flag)):
                parse(base + [flag, value])


# ---------------------------------------------------------------------------------------------- folders named
def test_a_folder_the_user_names_is_checked_before_anything_in_it_is_deleted(tmp_path):
    from tool import quickstart
    from tool.make_data import make_synthetic
    mine = tmp_path / 'mine'
    (mine / 'runs').mkdir(parents=True)
    (mine / 'runs' / 'thesis.tex').write_text('years of work')
    (mine / 'report.md').write_text('my report')
    for argv in (['--out', str(mine), '--fresh'], ['--out', tmp_path.anchor]):
        with pytest.raises(UserError, match='not a run folder'):
            quickstart.Quickstart(quickstart.parse_args(['--scale', 'tiny'] + argv))
    assert (mine / 'runs' / 'thesis.tex').read_text() == 'years of work' and (mine / 'report.md').is_file()
    # a run folder of the quickstart's own (its state.json) is cleaned by --fresh; a new or empty one is fine
    run = tmp_path / 'run'
    (run / 'runs' / 'teacher_s0').mkdir(parents=True)
    (run / 'state.json').write_text(json.dumps({'version': 1, 'scale': 'tiny', 'stages': {}}))
    quickstart.Quickstart(quickstart.parse_args(['--scale', 'tiny', '--out', str(run), '--fresh']))
    assert not (run / 'runs').exists()
    quickstart.Quickstart(quickstart.parse_args(['--scale', 'tiny', '--out', str(tmp_path / 'new')]))
    # the synthetic set's tool never replaces annotation files it did not write (here: a 3DPW copy)
    real = tmp_path / 'PW3D'
    fixtures.write_pw3d(real, num_images=1, images=False)
    annotations = real / 'data' / '3DPW_latest_test.json'
    before = annotations.read_bytes()
    with pytest.raises(UserError, match='did not write'):
        make_synthetic.main(['--out', str(real), '--num-images', '2', '--contact-sheet', 'none'] + SYNTH)
    assert annotations.read_bytes() == before and not (real / 'imageFiles').exists()


# ---------------------------------------------------------------------------------------------- regeneration


@pytest.mark.slow
def test_a_regeneration_is_built_beside_and_swapped_in_only_when_complete(tmp_path, renderer):
    from tool.make_data import make_synthetic
    out = tmp_path / 'Synthetic'
    assert make_synthetic.main(['--out', str(out), '--num-images', '3', '--seed', '1'] + SYNTH) == 0
    files = {p.relative_to(out): p.read_bytes() for p in out.rglob('*') if p.is_file()}
    assert any(p.suffix == '.jpg' for p in files)
    # interrupted while the new set is made: the old one is untouched, nothing is left beside it
    start = time.time()
    proc = subprocess.Popen([sys.executable, 'tool/make_data/make_synthetic.py', '--out', str(out),
                             '--num-images', '60', '--seed', '2'] + SYNTH, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not any(
            p.stat().st_mtime > start for p in tmp_path.rglob('*.jpg')):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == 'terminated (SIGTERM)', err[-1500:]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob('*') if p.is_file()} == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ['Synthetic']
    # completed: the new set replaces the old one whole (no image of the old one left under the new labels)
    assert make_synthetic.main(['--out', str(out), '--num-images', '2', '--seed', '3', '--split', 'test'] + SYNTH) == 0
    test = json.loads((out / 'data' / '3DPW_latest_test.json').read_text())
    named = {f'{i["sequence"]}/{i["file_name"]}' for i in test['images']}
    on_disk = {str(p.relative_to(out / 'imageFiles')) for p in (out / 'imageFiles').rglob('*.jpg')}
    assert on_disk == named and not (out / 'data' / '3DPW_latest_train.json').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['Synthetic']


# ---------------------------------------------------------------------------------------------- where runs write
def test_where_a_run_writes_comes_from_the_command_line_and_stays_inside_its_root(tmp_path):
    from main import train
    from main.checkpoint import save_checkpoint
    from main.model import Model
    for name in ('../../x', str(tmp_path / 'abs'), 'a/b'):
        with pytest.raises(UserError, match='plain folder name'):
            load_config(None, [f'exp_name={name}', f'output_dir={tmp_path}'])
    cfg = load_config(None, TINY)
    saved = dict(cfg.to_dict(), output_dir=str(tmp_path / 'elsewhere'), exp_name='../../escape')
    ckpt = save_checkpoint(tmp_path / 'given.pth.tar', {'model': Model(cfg).state_dict(), 'config': saved, 'epoch': 0})
    args = train.parse_args(['--continue', '--exp_dir', str(ckpt)])
    new, exp_dir, _, start = train.prepare(args)
    assert exp_dir is None and start is not None and (new.output_dir, new.exp_name) == ('output', '')
    args = train.parse_args(['--continue', '--exp_dir', str(ckpt), f'output_dir={tmp_path / "mine"}', '--exp_name',
                             'run'])
    new = train.prepare(args)[0]
    assert (new.output_dir, new.exp_name) == (str(tmp_path / 'mine'), 'run')


# ---------------------------------------------------------------------------------------------- OS errors
@contextlib.contextmanager
def file_size_limit(nbytes):
    """Writes beyond nbytes fail as on a full disk (EFBIG; torch.save's zip writer raises a RuntimeError)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


def test_an_os_error_whatever_the_library_calls_it_is_one_line_naming_the_path(tmp_path, capsys):
    from common.errors import run_cli
    from common.io import atomic_np_save, atomic_torch_save
    from main.tester import EvalResult
    big = {'w': torch.zeros(1 << 18)}
    cases = [(lambda p: atomic_torch_save(big, p), tmp_path / 'snapshot_0.pth.tar'),
             (lambda p: atomic_np_save(p, a=np.zeros(1 << 18)), tmp_path / 'samples.npz')]
    for write, path in cases:
        with file_size_limit(1 << 16), pytest.raises(OSError) as e:
            write(path)
        assert e.value.filename == str(path) and not path.exists() and not list(tmp_path.glob('.*.tmp'))
        with file_size_limit(1 << 16), pytest.raises(SystemExit) as code:
            run_cli(lambda: write(path))
        err = capsys.readouterr().err
        assert code.value.code == 1 and err.count('\n') == 1 and str(path) in err, err
    # the log file: one warning naming it, not a traceback per record
    from common.logger import setup_logger
    log = setup_logger(tmp_path / 'train.log')
    try:
        with file_size_limit(256):
            for _ in range(20):
                log.info('x' * 40)
    finally:
        setup_logger()
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'cannot write the log' in err and str(tmp_path / 'train.log') in err, err
    # a result whose per-sample file cannot be written leaves no summary behind (tools take the .json for done)
    result = EvalResult('x', {'mpjpe': 1.0}, samples={'ann_id': np.arange(1 << 16), 'pose': np.zeros((1 << 16, 72))})
    with file_size_limit(1 << 16), pytest.raises(OSError):
        result.save(tmp_path, 'metrics_x_0')
    assert not list(tmp_path.glob('metrics_x_0.*'))


# ---------------------------------------------------------------------------------------------- evaluation
@pytest.fixture(scope='module')
def pw3d_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('pw3d')
    fixtures.write_pw3d(root / 'PW3D', num_images=2, people=3)
    return root


def test_every_evaluation_counts_each_person_once_and_checks_what_it_read(pw3d_root, tmp_path, caplog):
    import shutil

    from common.pipeline import preprocessing as pre
    from data.dataset import get_dataset_class
    from main.model import Model
    from main.tester import evaluate
    root = tmp_path / 'data'
    shutil.copytree(pw3d_root, root)
    path = root / 'PW3D' / 'data' / '3DPW_latest_test.json'
    db = json.loads(path.read_text())
    anns = list(db['annotations'])
    db['annotations'] += [dict(anns[0]), dict(anns[1], id=100)]        # the same people again (same id, same box)
    path.write_text(json.dumps(db))
    img = root / 'PW3D' / 'data' / 'imageFiles' / 'courtyard_hug_00' / 'image_00001.jpg'
    cv2.imwrite(str(img), cv2.resize(cv2.imread(str(img)), (200, 150)))  # not the annotated 320 x 240
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'data.root={root}'])
    ds = get_dataset_class('PW3D')(cfg, 'test')
    assert sorted(r.ann_id for r in ds.records) == sorted(a['id'] for a in anns)   # 6 people, each once
    bad = [s for s in (ds[i] for i in range(len(ds))) if isinstance(s, pre.BadSample)]
    assert len(bad) == 3 and all('annotation says 320x240' in str(b) for b in bad)
    # a NaN box: its image is left out and named (its scene would lack a person), not cropped as most of the image
    db['annotations'].append(dict(anns[5], id=101, bbox=[float('nan'), 0, 10, 10]))
    path.write_text(json.dumps(db))
    ds = get_dataset_class('PW3D')(cfg, 'test')
    assert sorted(r.ann_id for r in ds.records) == [a['id'] for a in anns if a['image_id'] != anns[5]['image_id']]
    assert 'not 4 finite numbers' in caplog.text
    # input joints no detector gives (non-finite, far outside the image) do not shape the crop or reach the model
    pose = np.array([[100, 80, 0.9], [140, 200, 0.9], [1e30, 1e30, 0.9], [np.inf, 5, 0.9], [np.nan, 5, 0.9]],
                    np.float32)
    box = pre.pose_box(pose, 320, 240, train=False)
    assert np.allclose(box, pre.pose_box(pose[:2], 320, 240, train=False))
    _, _, _, joints, mask = pre.test_crop(np.zeros((240, 320, 3), np.uint8), box, pose, 0.1, 64)
    assert np.isfinite(joints).all() and mask[2:].sum() == 0 and mask[:2].sum() == 2
    # a set none of whose samples can be read: one line saying why, not an empty concatenation
    for p in (root / 'PW3D' / 'data' / 'imageFiles').rglob('*.jpg'):
        p.unlink()
    model = Model(load_config('assets/yaml/tiny_cpu.yml', []))
    with pytest.raises(UserError, match='none of its 3 samples could be read, e.g. .*no such file'):
        evaluate(model, get_dataset_class('PW3D')(cfg, 'test'), cfg, torch.device('cpu'), progress=False)


# ---------------------------------------------------------------------------------------------- bounded reads
def test_files_from_outside_are_read_with_bounds(tmp_path):
    from common.io import load_torch_file
    # a zip bomb: a torch checkpoint whose tensor data inflate from ~1 MB to 640 MB when torch reads them
    bomb = tmp_path / 'bomb.pth.tar'
    torch.save({'w': torch.zeros(4)}, tmp_path / 'plain.pth')
    with zipfile.ZipFile(tmp_path / 'plain.pth') as src, \
            zipfile.ZipFile(bomb, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for info in src.infolist():
            if not info.filename.endswith('data/0'):
                dst.writestr(info.filename, src.read(info))
                continue
            with dst.open(info.filename, 'w', force_zip64=True) as f:
                chunk = bytes(1 << 20)
                for _ in range(640):
                    f.write(chunk)
    assert bomb.stat().st_size < 4 << 20
    with pytest.raises(UserError, match=r'bomb.pth.tar is refused: .* expand to 0.6 GB'):
        load_torch_file(bomb)
    # a YAML file whose aliases stand for a million values (a real config key, so it would be walked)
    levels = ['a: &a [Synthetic, Synthetic, Synthetic, Synthetic, Synthetic, Synthetic, Synthetic, Synthetic, '
              'Synthetic, Synthetic]'] + [f'{chr(98 + i)}: &{chr(98 + i)} [{", ".join([f"*{chr(97 + i)}"] * 10)}]'
                                          for i in range(5)]
    cfg = tmp_path / 'bomb.yml'
    cfg.write_text('\n'.join(['_anchors:'] + ['  ' + line for line in levels] + ['data:', '  train_sets_3d: *f']))
    t0 = time.time()
    with pytest.raises(UserError, match='aliases expand it'):
        load_config(cfg)
    assert time.time() - t0 < 5
    # a tensor claiming far more values than its file holds (a stride-0 view)
    torch.save({'w': torch.zeros(1).expand(1 << 31)}, tmp_path / 'view.pth')
    with pytest.raises(UserError, match='claims 8.0 GB'):
        load_torch_file(tmp_path / 'view.pth')


def test_weights_that_cannot_be_used_are_one_line_at_load(tmp_path):
    """NaN / inf weights (a diverged run) and non-tensor entries, for each way weights come in: a checkpoint to test
    or continue, a teacher, a pretrained backbone."""
    from common.nets.pretrained import read_checkpoint
    from main.checkpoint import load_teacher, model_from_checkpoint, save_checkpoint
    from main.model import Model
    teacher_cfg = load_config(None, TINY + ['mode=teacher', 'edge.type=smpl_overlap'])
    sd = Model(teacher_cfg).state_dict()
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.numel() > 1)
    for bad, message in ((math.nan, 'holds NaN or inf: model.' + key), (math.inf, 'holds NaN or inf')):
        broken = dict(sd, **{key: sd[key].clone().fill_(bad)})
        path = save_checkpoint(tmp_path / 'nan.pth.tar', {'model': broken, 'config': teacher_cfg.to_dict(),
                                                          'epoch': 0})
        with pytest.raises(UserError, match=re.escape(message)):
            model_from_checkpoint(path)
        student = load_config(None, TINY + ['mode=student', 'edge.type=canny', 'distill.loss=l1',
                                            f'distill.teacher_ckpt={path}'])
        with pytest.raises(UserError, match='NaN or inf'):
            load_teacher(student)
    torch.save({k[len('backbone.'):]: v.clone().fill_(math.nan) if v.is_floating_point() else v
                for k, v in sd.items() if k.startswith('backbone.')}, tmp_path / 'imagenet.pth')
    with pytest.raises(UserError, match='imagenet.pth holds NaN or inf'):
        read_checkpoint(tmp_path / 'imagenet.pth', 'model.pretrained')
    path = save_checkpoint(tmp_path / 'str.pth.tar', {'model': dict(sd, **{key: 'weights'}),
                                                      'config': teacher_cfg.to_dict(), 'epoch': 0})
    with pytest.raises(UserError, match=f"its weight '{re.escape(key)}' is a str, not a tensor"):
        model_from_checkpoint(path)


# ---------------------------------------------------------------------------------------------- the rest
def test_train_edge_checks_out_before_training(tmp_path):
    from tool.experiments import train_edge
    for out, message in ((tmp_path, 'is a folder'), (tmp_path / 'w.json', 'report is written')):
        with pytest.raises(UserError, match=message):
            train_edge.main(['--edge', 'see', '--data', str(tmp_path / 'no_data'), '--out', str(out)])


@pytest.mark.slow
def test_throughput_counts_the_samples_each_step_saw(tmp_path, monkeypatch):
    """A batch larger than the set is the set: the logged samples/s counts those, not train.batch_size."""
    import main.trainer as T
    from main import train
    data = tmp_path / 'data'
    fixtures.write_pw3d(data / 'Synthetic', num_images=1, people=3, split='train',
                        image_root=data / 'Synthetic' / 'imageFiles', sequence='synth_train_00')
    clock = iter(range(10 ** 6))
    monkeypatch.setattr(T, 'time', type('Clock', (), {'perf_counter': staticmethod(lambda: float(next(clock)))}))
    rates = []
    monkeypatch.setattr(T.Trainer, 'log_step', lambda self, terms, lrs, rate, bar, n: rates.append(rate))
    train.main(['--cfg', 'assets/yaml/tiny_cpu.yml', f'data.root={data}', f'output_dir={tmp_path / "out"}',
                'train.batch_size=64', 'train.max_iters=1', 'train.print_freq=1', 'train.vis_every=0',
                'train.ckpt_every=0'])
    assert rates == [3.0]   # 3 people in 1 clock second
