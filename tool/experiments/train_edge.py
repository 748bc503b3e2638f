"""Train a learned student edge network (see | rcf | hed | pidinet) on the synthetic set.

So every edge type works on a fresh machine:

    python tool/experiments/train_edge.py --edge see                      # -> output/edge_weights/see.pth
                                                                          # (+ .json report)
    python tool/experiments/train_edge.py --edge pidinet --steps 2000 --size 128 --batch 8
    python tool/experiments/train_edge.py --edge hed --init network-bsds500.pytorch    # fine-tune the official weights
    python tool/experiments/train_edge.py --edge rcf --data data/Synthetic --out output/edge_weights/rcf_small.pth

Targets are rendered from the ground-truth meshes at crop resolution (data/edge_crops.py): all people's
structural edges, visible or hidden by another person, and (SEE's second head) the people's mask. The
weights are written in the official format of the network (HED: pytorch-hed's state dict with module* keys;
RCF: {'epoch', 'state_dict'}; PiDiNet: {'epoch', 'state_dict'} with 'module.' keys, pixel-difference form;
SEE: SEFD's UNet state dict), where `edge.weights` finds them by default. Precision, recall and F-score
(ODS) on the test split are reported before and after training, in <out>.json too.
Resumable: the training state is saved to <out stem>.train_state.pth every --save-every steps; the same
command continues from it (--fresh starts over). Without a GPU, keep --size/--steps small.
"""
import argparse
import json
import sys
import time

from common.errors import UserError, check_number, run_cli

EDGES = ('see', 'rcf', 'hed', 'pidinet')


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass
# Adam learning rates from scratch: PiDiNet's own (5e-3); BN UNet; VGG nets without BN need a small one
DEFAULT_LR = {'see': 1e-3, 'pidinet': 5e-3, 'hed': 1e-4, 'rcf': 1e-4}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    p.add_argument('--edge', required=True, choices=EDGES)
    p.add_argument('--data', default='data/Synthetic', help='dataset in the 3DPW layout (relative: from the repo root)')
    p.add_argument('--out', default=None, help='weights file (default output/edge_weights/<edge>.pth, the file '
                                               'edge.weights falls back to)')
    p.add_argument('--size', type=int, default=256, help='crop size (the student sees 256)')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--steps', type=int, default=3000, help='optimisation steps in all (a resumed run goes on to it)')
    p.add_argument('--lr', type=float, default=None, help=f'Adam learning rate (default per network: {DEFAULT_LR})')
    p.add_argument('--weight-decay', type=float, default=1e-4)
    p.add_argument('--init', default=None, help='start from these weights (official format of the network)')
    p.add_argument('--eval-every', type=int, default=500,
                   help='score the test split every N steps (0: at the end only)')
    p.add_argument('--save-every', type=int, default=200, help='save the training state every N steps')
    p.add_argument('--max-test', type=int, default=0, help='score on the first N test crops only (0: all)')
    p.add_argument('--workers', type=int, default=2, help='loader processes rendering the training targets')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: cuda when available)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--fresh', action='store_true', help='ignore a saved training state and start over')
    p.add_argument('--no-progress', action='store_true')
    args = p.parse_args(argv)
    for name, low, high in (('size', 1, 4096), ('batch', 1, 4096), ('steps', 1, None), ('weight_decay', 0.0, None),
                            ('eval_every', 0, None), ('save_every', 1, None), ('max_test', 0, None),
                            ('workers', 0, 256), ('seed', 0, 2 ** 32 - 1)):
        check_number(f'--{name.replace("_", "-")}', getattr(args, name), low, high)
    if args.lr is not None:
        check_number('--lr', args.lr, 0.0)
    if args.size < 32 or args.size % 16:
        raise UserError(f'--size must be a multiple of 16 and >= 32 (the networks pool 4 times), got {args.size}')
    return args


def check_out(out):
    """Before any training: --out can be written (its folder made and writable; not a folder itself; not the .json
    the report goes to), so a run never fails at its end."""
    import tempfile

    from common.io import make_folder
    if out.is_dir():
        raise UserError(f'--out {out} is a folder; give the weights file to write (e.g. {out / "weights.pth"})')
    if out.suffix == '.json':
        raise UserError(f'--out {out}: the report is written to <out>.json; give the weights another suffix (.pth)')
    make_folder(out.parent)
    try:
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as e:   # read-only, no rights: named by its folder
        raise OSError(e.errno, e.strerror, str(out.parent)) from e


def build(kind, training):
    """The edge estimator of `kind`; PiDiNet trains in its pixel-difference form."""
    import importlib
    mod = importlib.import_module(f'common.edges.{kind}')
    cls = {'see': 'SEEEdge', 'rcf': 'RCFEdge', 'hed': 'HEDEdge', 'pidinet': 'PiDiNetEdge'}[kind]
    return getattr(mod, cls)(converted=not training) if kind == 'pidinet' else getattr(mod, cls)()


def make_test_set(root, size, limit, progress):
    """All test crops (no augmentation) rendered once, as uint8 tensors."""
    import torch
    from tqdm import tqdm

    from data.edge_crops import EdgeCrops
    ds = EdgeCrops(root, 'test', size, train=False)
    n = min(len(ds), limit) if limit else len(ds)
    if n == 0:
        raise UserError(f'{root}: the test split has no people to score on')
    items = [ds[i] for i in tqdm(range(n), desc='test crops', disable=not progress, leave=False)]
    return {k: torch.stack([(it[k] * 255).round().to(torch.uint8) for it in items]) for k in items[0]}


def evaluate(net, test, batch, device, progress):
    import torch
    from tqdm import tqdm

    from common.edges.training import EdgeScore, tolerance_px
    was_training = net.training
    net.eval()
    score = EdgeScore(tolerance_px(test['img'].shape[-1]))
    with torch.no_grad():
        for i in tqdm(range(0, len(test['img']), batch), desc='scoring', disable=not progress, leave=False):
            b = {k: v[i:i + batch].to(device).float() / 255 for k, v in test.items()}
            out = net.outputs(b['img'])
            mask = torch.sigmoid(out.mask) if out.mask is not None else None
            score.add(torch.sigmoid(out.edges[-1]), b['edge'], mask, b['mask'])
    net.train(was_training)
    return score.result()


def fmt(r):
    s = f"F {r['ods']:.3f} (P {r['precision']:.3f}, R {r['recall']:.3f} at {r['threshold']:.2f})"
    return s + (f", mask IoU {r['mask_iou']:.3f}" if 'mask_iou' in r else '')


def main(argv=None):
    args = parse_args(argv)
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from common.edges.learned import default_weights_path
    from common.edges.training import edge_losses
    from common.io import atomic_torch_save, atomic_write_text
    from common.nets.pretrained import read_checkpoint
    from common.paths import resolve_path
    from data.edge_crops import EdgeCrops, StepSampler

    progress = not args.no_progress
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    root = resolve_path(args.data)
    out = resolve_path(args.out) if args.out else default_weights_path(args.edge)
    check_out(out)
    state_path = out.with_name(out.stem + '.train_state.pth')
    lr = args.lr or DEFAULT_LR[args.edge]
    torch.manual_seed(args.seed)

    train_set = EdgeCrops(root, 'train', args.size, train=True)
    if not len(train_set):
        raise UserError(f'{root}: the train split has no people to train on')
    net = build(args.edge, training=True).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=args.weight_decay)
    step, history = 0, {}
    resumed = state_path.is_file() and not args.fresh
    if resumed:
        st = read_checkpoint(state_path, 'training state')
        if st.get('edge') != args.edge:
            raise UserError(f'{state_path} is the training state of edge {st.get("edge")!r}, not {args.edge!r}; '
                            f'use another --out or --fresh')
        net.net.load_state_dict(st['model'])
        opt.load_state_dict(st['optimizer'])
        step, history = st['step'], st['history']
        print(f'resuming {args.edge} from step {step} ({state_path})')
    elif args.init:
        net.load_file(resolve_path(args.init))
    elif hasattr(net.net, 'init_weights'):
        net.net.init_weights()
    test = make_test_set(root, args.size, args.max_test, progress)   # after the weights: a bad --init fails at once
    if not resumed:
        history['before'] = evaluate(net, test, args.batch, device, progress)
        print(f'{args.edge} before training: {fmt(history["before"])}')

    def save_state():
        atomic_torch_save({'edge': args.edge, 'step': step, 'history': history, 'model': net.net.state_dict(),
                           'optimizer': opt.state_dict(), 'args': vars(args)}, state_path)

    net.train()
    if step < args.steps:
        sampler = StepSampler(len(train_set), args.batch, step, args.steps, args.seed)
        # the renderer cannot run in a process forked from one that rendered (the test crops): forkserver
        loader = DataLoader(train_set, batch_sampler=sampler, num_workers=args.workers,
                            multiprocessing_context='forkserver' if args.workers else None,
                            pin_memory=device.type == 'cuda')
        bar = tqdm(total=args.steps, initial=step, desc=f'train {args.edge}', disable=not progress)
        t0 = time.perf_counter()
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            terms = edge_losses(net.outputs(batch['img']), batch)
            loss = sum(terms.values())
            if not torch.isfinite(loss):
                raise UserError(f'loss is {loss.item()} at step {step}; lower --lr (now {lr})')
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix({k: f'{v.item():.4f}' for k, v in terms.items()})
            if args.eval_every and step % args.eval_every == 0 and step < args.steps:
                history[f'step_{step}'] = evaluate(net, test, args.batch, device, progress)
                bar.write(f'step {step}: {fmt(history[f"step_{step}"])}')
            if step % args.save_every == 0 or step == args.steps:
                save_state()
        bar.close()
        history['train_seconds'] = history.get('train_seconds', 0.0) + time.perf_counter() - t0
    history['after'] = evaluate(net, test, args.batch, device, progress)
    save_state()
    atomic_torch_save(net.official_checkpoint(step), out)
    report = {'edge': args.edge, 'steps': step, 'size': args.size, 'batch': args.batch, 'lr': lr,
              'data': str(root), 'test_crops': len(test['img']), 'weights': str(out), **history}
    atomic_write_text(out.with_suffix('.json'), json.dumps(report, indent=1))
    print(f'{args.edge} after {step} steps: {fmt(history["after"])}')
    if 'before' in history:
        print(f'F-score (ODS) on the test split: {history["before"]["ods"]:.3f} -> {history["after"]["ods"]:.3f}')
    use = ('uses it when edge.weights is empty' if out == default_weights_path(args.edge)
           else f'uses it with edge.weights={out}')
    print(f'weights: {out} (official {args.edge} format; edge.type={args.edge} {use})')
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
