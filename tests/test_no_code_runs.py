"""No file a user hands in can run code: every checkpoint, weight and state file is read weights-only
(common/io.load_torch_file). A pickle whose loading would create a marker file is given to each entry point that
reads such files; each refuses it in one line naming what it holds, and the marker never appears."""
import subprocess
import sys

import pytest
import torch
import yaml

from common.errors import UserError
from common.io import load_torch_file
from common.paths import ROOT
from main.config import load_config
from tests import fixtures


class Payload:
    """Unpickling this calls open(marker, 'w'): the file appears if and only if loading ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, 'w')


def evil_file(path, marker, wrap=lambda p: {'model': {'w': torch.zeros(1)}, 'config': {}, 'x': p}):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(wrap(Payload(marker)), path)
    return path


def test_loader_refuses_code_and_keeps_data(tmp_path):
    marker = tmp_path / 'ran'
    with pytest.raises(UserError, match=r'is refused: it holds io\.open') as e:
        load_torch_file(evil_file(tmp_path / 'e.pth', marker))
    assert '\n' not in str(e.value) and not marker.exists()
    import numpy as np
    torch.save({'rng': np.random.get_state(), 'epoch': np.int64(3), 'w': torch.ones(2)}, tmp_path / 'old.pth')
    old = load_torch_file(tmp_path / 'old.pth')   # numpy arrays and scalars are data: an older checkpoint loads
    assert old['epoch'] == 3 and old['rng'][1].dtype == np.uint32 and torch.equal(old['w'], torch.ones(2))


@pytest.mark.slow
def test_no_entry_point_runs_a_checkpoint(tmp_path):
    marker = tmp_path / 'ran'
    data = tmp_path / 'data'
    fixtures.write_pw3d(data / 'Synthetic', num_images=1, split='train', image_root=data / 'Synthetic/imageFiles',
                        sequence='synth_train_00')
    fixtures.write_pw3d(data / 'Synthetic', num_images=1, split='test', image_root=data / 'Synthetic/imageFiles',
                        sequence='synth_test_00', seed=1)
    evil = evil_file(tmp_path / 'evil.pth.tar', marker)
    exp = tmp_path / 'exp'   # an experiment of this project whose last checkpoint was replaced
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'data.root={data}', 'train.val_every=0'])
    (exp / 'log').mkdir(parents=True)
    (exp / 'config.yaml').write_text(yaml.safe_dump(cfg.to_dict()))
    evil_file(exp / 'checkpoint' / 'snapshot_0.pth.tar', marker)
    train = ['main/train.py', '--cfg', 'assets/yaml/tiny_cpu.yml', f'data.root={data}', f'output_dir={tmp_path / "o"}',
             'train.val_every=0', 'data.num_workers=0']
    student = ['mode=student', 'edge.type=canny', 'distill.loss=l1']
    cases = {
        'main/test.py --ckpt': ['main/test.py', '--ckpt', evil],
        'main/train.py --continue': ['main/train.py', '--continue', '--exp_dir', exp],
        'distill.teacher_ckpt': train + student + [f'distill.teacher_ckpt={evil}'],
        'model.pretrained': train + [f'model.pretrained={evil}'],
        'edge.weights': train + ['mode=student', 'edge.type=hed', f'edge.weights={evil}'],
        'demo/demo.py --ckpt': ['demo/demo.py', '--ckpt', evil, '--img', next((data / 'Synthetic').rglob('*.jpg')),
                                '--out', tmp_path / 'demo'],
        'tool/convert/convert_checkpoint.py': ['tool/convert/convert_checkpoint.py', evil,
                                               tmp_path / 'converted.pth.tar'],
        'tool/experiments/train_edge.py --init': ['tool/experiments/train_edge.py', '--edge', 'hed', '--init', evil,
                                                  '--data', data / 'Synthetic', '--out', tmp_path / 'hed.pth',
                                                  '--steps', '1'],
    }
    for what, cmd in cases.items():
        r = subprocess.run([sys.executable, *map(str, cmd)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert not marker.exists(), f'{what} ran the code in the file'
        assert r.returncode == 2 and 'is refused: it holds io.open' in r.stderr, (what, r.stderr[-1500:])
        assert r.stderr.strip().count('\n') == 0, (what, r.stderr[-1500:])
