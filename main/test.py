"""Evaluate a checkpoint: MPJPE, PA-MPJPE, MPVPE in mm on 3DPW (3DPW-Crowd / -OC / -PC), the synthetic set
(also by occlusion level and people per image) or Human3.6M (protocol 2).

    python main/test.py --ckpt output/<experiment>                          # its newest snapshot
    python main/test.py --ckpt output/<experiment> --epoch 10 test.subset=crowd
    python main/test.py --gpu 0 --cfg assets/yaml/3dpw.yml --exp_dir output/<experiment> --test_epoch 10   # 3DCrowdNet's flags
    python main/test.py --ckpt student.pth.tar data.test_set=Synthetic

The config saved in the checkpoint is used, then --cfg (a YAML file) and key=value overrides on top.
Writes <experiment>/result/metrics_<testset>_<epoch>.json (summary and groups) and .npz (per-sample metrics
and predictions: pose, shape, cam_trans, bbox, ann_id).
"""
import argparse
import logging

from common.errors import UserError, run_cli
from common.logger import setup_logger
from common.paths import resolve_path
from main.checkpoint import model_from_checkpoint
from main.tester import evaluate, setup_testing

log = logging.getLogger('sefd')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--ckpt', default='', help='checkpoint file or experiment folder')
    ap.add_argument('--exp_dir', default='', help='experiment folder (3DCrowdNet form; same as --ckpt)')
    ap.add_argument('--epoch', '--test_epoch', dest='epoch', type=int, default=None,
                    help='snapshot epoch (default: the newest)')
    ap.add_argument('--cfg', default='', help='YAML applied on top of the saved config (e.g. a test set)')
    ap.add_argument('--gpu', default='', help="GPU id; empty: GPU 0 if any, else CPU; -1: CPU")
    ap.add_argument('--amp', action='store_true', help='mixed precision where this device computes it natively (bf16, else fp16 on GPUs, else fp32)')
    ap.add_argument('--result_dir', default='', help='where the result files go (default: <experiment>/result)')
    ap.add_argument('overrides', nargs='*', help='config overrides key=value, e.g. test.subset=crowd')
    return ap.parse_intermixed_args(argv)  # key=value overrides may come between flags


def result_stem(cfg, path):
    subset = f'_{cfg.test.subset}' if cfg.test.subset and cfg.data.test_set == 'PW3D' else ''
    tag = path.name.split('.')[0]
    tag = tag.split('_', 1)[1] if tag.startswith('snapshot_') else tag
    return f'metrics_{cfg.data.test_set}{subset}_{tag}'


def main(argv=None):
    args = parse_args(argv)
    setup_logger()
    source = args.ckpt or args.exp_dir
    if not source:
        raise UserError('give the checkpoint: --ckpt FILE|EXPERIMENT_FOLDER (or --exp_dir FOLDER --test_epoch N)')
    overrides = list(args.overrides) + (['train.amp=true'] if args.amp else [])
    model, cfg, ckpt, path = model_from_checkpoint(resolve_path(source), args.epoch, overrides, args.cfg or None)
    exp_dir = path.parent.parent if path.parent.name == 'checkpoint' else path.parent
    setup_logger(exp_dir / 'log' / 'test.log' if (exp_dir / 'log').is_dir() else None)
    device, dataset = setup_testing(model, cfg, args.gpu)
    if model.body_model.is_procedural:
        log.warning('procedural body model: these numbers are not comparable to published ones')
    stem = result_stem(cfg, path)
    result = evaluate(model, dataset, cfg, device, name=f'{cfg.data.test_set}{"/" + cfg.test.subset if cfg.test.subset else ""}')
    print(f'\n{path}\n{result.table()}\n')
    result_dir = resolve_path(args.result_dir) if args.result_dir else exp_dir / 'result'
    result.save(result_dir, stem)
    log.info(f'{stem}: {result.line()}; written to {result_dir / stem}.json/.npz')
    return result


def cli():
    """The console script sefd-test (pyproject.toml): main() with one-line errors."""
    run_cli(main)


if __name__ == '__main__':
    cli()
