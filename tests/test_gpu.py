"""GPU smoke tests, skipped on machines without CUDA: `python -m pytest -q -m gpu` on a GPU machine runs them all.
An fp16 training step with its GradScaler (the path GPUs without bf16 take under --amp) and a 2-process NCCL step
(tests/ddp_train.py under torchrun, one GPU per rank) whose ranks end with the same weights."""
import os
import subprocess
import sys

import pytest
import torch

from tests import fixtures
from tests.conftest import ROOT

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')]
TINY = ['model.backbone=resnet18', 'model.procedural_vertices=800', 'model.input_size=64', 'data.num_workers=0']


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    fixtures.write_pw3d(root / 'Synthetic', num_images=2, split='train', image_root=root / 'Synthetic' / 'imageFiles',
                        sequence='synth_train_00')
    return root


def test_an_fp16_step_with_its_scaler_moves_the_weights_and_stays_finite(data_root):
    from data.dataset import build_train_dataset
    from data.loader import make_loader
    from main.config import load_config
    from main.model import Model
    from main.trainer import forward_losses, make_optimizer, optimize
    from common.runtime import to_device
    device = torch.device('cuda', 0)
    cfg = load_config('assets/yaml/tiny_cpu.yml', TINY + [f'data.root={data_root}', 'data.train_sets_3d=[Synthetic]',
                                                           'data.train_sets_2d=[]'])
    model = Model(cfg).to(device).train()
    opt, scaler = make_optimizer(model, cfg), torch.amp.GradScaler('cuda')
    inputs, targets, meta = (to_device(b, device) for b in next(iter(make_loader(
        build_train_dataset(cfg), cfg, 4, device, train=True))))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(20):   # the scaler starts at 2**16 and skips (halving it) the steps whose fp16 gradients overflow
        with torch.autocast('cuda', dtype=torch.float16):
            total, terms = forward_losses(model, inputs, targets, meta, False, device)
        assert torch.isfinite(total), terms
        optimize(total, model, opt, scaler)
    assert scaler.get_scale() > 0 and scaler.is_enabled()
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert len(moved) > 0.5 * len(before) and all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='NCCL needs a GPU per rank: fewer than 2 GPUs here')
def test_two_nccl_ranks_end_with_the_same_weights(data_root, tmp_path):
    over = TINY + [f'data.root={data_root}', 'data.train_sets_3d=[Synthetic]', 'data.train_sets_2d=[]',
                   'train.end_epoch=1', 'train.batch_size=2', 'train.vis_every=0', 'train.ckpt_every=0',
                   'train.val_every=0']
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc-per-node', '2', '-m', 'tests.ddp_train',
                        str(tmp_path)] + over, cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, SEFD_DDP_GPU='1'))
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [torch.load(tmp_path / f'rank{k}.pt', map_location='cpu', weights_only=True) for k in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() and all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
