"""Evaluate a checkpoint on 3DPW (or the synthetic set): MPJPE, PA-MPJPE, MPVPE in mm.

    python main/test.py --ckpt output/<experiment>                       # latest snapshot of a run
    python main/test.py --ckpt output/<experiment> --epoch 10 test.subset=crowd   # 3DPW-Crowd
    python main/test.py --ckpt teacher.pth.tar data.test_set=Synthetic

The config saved in the checkpoint is used, with `key=value` overrides (test.subset: '' | crowd | oc | pc).
Per-sample results go to <experiment>/result/ (atomically) next to the printed means.
"""
import argparse
import json
import logging

if not __package__:  # run as a script: put the repository root on sys.path
    import _init_paths  # noqa: F401

import torch
from tqdm import tqdm

from common.errors import UserError, run_cli
from common.logger import setup_logger
from common.utils.io import atomic_write_text
from common.utils.metrics import MetricAccumulator
from data.dataset import get_dataset_class
from main.config import Config, parse_overrides, resolve_path, update_config, validate
from main.model import Model
from main.trainer import load_checkpoint, make_loader, parse_gpus, to_device

log = logging.getLogger('sefd')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--ckpt', required=True, help='checkpoint file or experiment folder')
    ap.add_argument('--epoch', type=int, default=None, help='snapshot epoch (default: the latest)')
    ap.add_argument('--gpu', default='', help="one GPU id; empty: GPU 0 if any, else CPU; -1: CPU")
    ap.add_argument('overrides', nargs='*', help='config overrides key=value, e.g. test.subset=crowd')
    return ap.parse_args(argv)


def checkpoint_path(arg, epoch):
    path = resolve_path(arg)
    if epoch is None:
        return path
    folder = path / 'checkpoint' if (path / 'checkpoint').is_dir() else path
    return folder / f'snapshot_{epoch}.pth.tar'


@torch.no_grad()
def evaluate(model, dataset, cfg, device):
    loader = make_loader(dataset, cfg, cfg.test.batch_size, device)
    acc, per_sample = MetricAccumulator(), []
    model.eval()
    for inputs, targets, meta in tqdm(loader, desc=f'test {dataset.name}', dynamic_ncols=True):
        out = model(to_device(inputs, device), mode='test')
        metrics = dataset.evaluate(out['mesh_cam'].float().cpu(), targets['mesh_cam'])
        acc.add(metrics)
        for i, aid in enumerate(meta['ann_id'].tolist()):
            per_sample.append({'ann_id': aid, **{k: float(v[i]) for k, v in metrics.items()}})
    return acc.summary(), per_sample


def main(argv=None):
    args = parse_args(argv)
    ckpt, path = load_checkpoint(checkpoint_path(args.ckpt, args.epoch))
    cfg = update_config(Config(), ckpt.get('config', {}), f'the config saved in {path}')
    cfg = validate(update_config(cfg, parse_overrides(args.overrides), 'the command line'))
    exp_dir = path.parent.parent if path.parent.name == 'checkpoint' else path.parent
    setup_logger(exp_dir / 'log' / 'test.log' if (exp_dir / 'log').is_dir() else None)
    gpus = parse_gpus(args.gpu)
    device = torch.device('cuda', gpus[0]) if gpus else torch.device('cpu')

    model = Model(cfg).to(device)
    missing, unexpected = model.load_state_dict(ckpt['model'], strict=False)
    if missing or unexpected:
        raise UserError(f'{path} does not fit this model (missing {missing[:3]}..., unexpected {unexpected[:3]}...); '
                        f'was it trained with another model.backbone / mode / pose_head?')
    dataset = get_dataset_class(cfg.data.test_set)(cfg, 'test')
    if len(dataset) == 0:
        raise UserError(f'{cfg.data.test_set} test set (subset {cfg.test.subset!r}) has no samples')
    summary, per_sample = evaluate(model, dataset, cfg, device)
    name = f'{cfg.data.test_set}{"_" + cfg.test.subset if cfg.test.subset else ""}_epoch{ckpt["epoch"]}'
    if model.body_model.is_procedural:
        log.warning('procedural body model: these numbers are not comparable to published ones')
    log.info(f'{name}: ' + ', '.join(f'{k.upper()} {v:.2f} mm' for k, v in summary.items()) + f' ({len(per_sample)} samples)')
    if (exp_dir / 'result').is_dir():
        atomic_write_text(exp_dir / 'result' / f'{name}.json',
                          json.dumps({'summary': summary, 'samples': per_sample}, indent=1))
    return summary


if __name__ == '__main__':
    run_cli(main)
