"""tool/experiments/ablation.py on a 2x2 grid of tiny students: killed once a cell has finished, run again,
finished cells not retrained; the table, the CSV and the chart written; and the parsing of grid values."""
import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import pytest

from common.paths import ROOT
from main.checkpoint import save_checkpoint
from main.config import load_config
from main.model import Model
from tests import fixtures

pytestmark = pytest.mark.slow   # end-to-end runs of the tool: pytest -m "not slow" skips them

TINY = ['model.backbone=resnet18', 'model.input_size=64', 'model.procedural_vertices=800']


def test_grid_values_keep_commas_inside_brackets():
    from tool.experiments.ablation import axis_from_arg, split_values
    assert split_values('[3,4],[2,3,4],[1,2,3,4]') == ['[3,4]', '[2,3,4]', '[1,2,3,4]']
    assert split_values('canny,rcf,hed') == ['canny', 'rcf', 'hed']
    assert split_values("'a,b',{x: 1, y: 2}") == ["'a,b'", '{x: 1, y: 2}']
    ax = axis_from_arg('distill.stages=[3,4],[2,3,4]')
    assert ax.values == [['distill.stages=[3,4]'], ['distill.stages=[2,3,4]']]


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny synthetic set and an (untrained) teacher checkpoint of the students' architecture."""
    root = tmp_path_factory.mktemp('abl')
    images = root / 'data' / 'Synthetic' / 'imageFiles'
    fixtures.write_pw3d(root / 'data' / 'Synthetic', num_images=2, split='train', image_root=images,
                        sequence='synth_train_00')
    fixtures.write_pw3d(root / 'data' / 'Synthetic', num_images=1, split='test', image_root=images,
                        sequence='synth_test_00', seed=1)
    cfg = load_config(None, TINY + ['mode=teacher', 'edge.type=smpl_overlap'])
    teacher = save_checkpoint(root / 'teacher.pth.tar', {'model': Model(cfg).state_dict(), 'config': cfg.to_dict(),
                                                         'epoch': 0})
    return root, teacher


def command(root, teacher, out):
    fixed = TINY + ['data.train_sets_3d=[Synthetic]', 'data.train_sets_2d=[]', 'data.test_set=Synthetic',
                    f'data.root={root / "data"}', 'data.num_workers=0', 'train.batch_size=2', 'train.max_iters=2',
                    'train.end_epoch=1', 'train.vis_every=0', 'train.ckpt_every=1', 'train.print_freq=1',
                    'test.batch_size=8']
    return [sys.executable, 'tool/experiments/ablation.py', '--base', 'assets/yaml/student.yml', 'distill.loss=l1,at',
            'distill.stages=[4],[3,4]', *fixed, '--teacher', str(teacher), '--no-reference', '--jobs', '2',
            '--out', str(out)]


def finished_cells(out):
    return sorted(p.parents[2].name for p in out.glob('cells/*/*/result/metrics_*.json'))


def test_ablation_grid_resumes_after_a_kill(setup, tmp_path):
    root, teacher = setup
    out = tmp_path / 'abl'
    proc = subprocess.Popen(command(root, teacher, out), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    try:
        while not finished_cells(out):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.time() < deadline, 'no cell finished in time'
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)   # the runner and the train/test processes it started
        proc.wait()
    done = finished_cells(out)
    assert 0 < len(done) < 4, 'the whole grid finished before it could be killed'
    snaps = {p: p.stat().st_mtime_ns for c in done for p in (out / 'cells' / c).glob('*/checkpoint/*.pth.tar')}
    assert snaps

    r = subprocess.run(command(root, teacher, out), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    for c in done:
        assert f'cell {c}: done, skipped' in r.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in snaps.items())   # not retrained
    assert len(finished_cells(out)) == 4
    for c in (out / 'cells').iterdir():   # one experiment per cell, even for the one killed mid-training
        assert len([p for p in c.iterdir() if p.is_dir()]) == 1

    rows = list(csv.DictReader((out / 'results.csv').open()))
    assert sorted(r['kind'] for r in rows) == ['cell'] * 4 + ['teacher']
    assert {(r['distill.loss'], r['distill.stages']) for r in rows if r['kind'] == 'cell'} == \
        {('l1', '[4]'), ('l1', '[3,4]'), ('at', '[4]'), ('at', '[3,4]')}
    table = (out / 'table.md').read_text()
    for r in rows:
        assert f'{float(r["pa_mpjpe"]):.2f}' in table
    assert 'teacher (reference)' in table and 'distill.loss=at, distill.stages=[3,4]' in table
    chart = cv2.imread(str(out / 'chart.png'))
    assert chart is not None and chart.shape[0] > 100
    shutil.rmtree(out / 'cells')   # the checkpoints
