"""Does a model use what the method feeds it? Its test metrics with its inputs altered, side by side.

    python tool/experiments/probe_inputs.py --ckpt output/<experiment>                 # newest snapshot, its test set
    python tool/experiments/probe_inputs.py --ckpt output/<experiment> --out probe.json data.test_set=Synthetic

Every model is tested as given, with the crop images swapped between people (each person gets the crop of someone
half a test batch away, mostly in another image, and a teacher that person's edge map; the input 2D pose is kept),
and with a uniform grey image (edge map zero). Models with an edge channel also with the edge map zeroed and with the edge maps swapped (the image
kept). SEFD relies on the image pathway (the edge enters as a 4th input channel, distillation pulls backbone
features): a model whose metrics do not move when its image or edge changes lifts the input 2D pose and ignores
the rest. Printed: MPJPE / PA-MPJPE / MPVPE overall and PA-MPJPE on the most hidden third (synthetic set), each
with its change against the model as given, and RotationNet's image gate where the model has one. --out writes
them as JSON (the quickstart's report reads it).
"""
import argparse
import json
import logging

import numpy as np
import torch

from common.errors import UserError, run_cli
from common.io import atomic_write_text
from common.logger import setup_logger
from common.paths import resolve_path
from main.checkpoint import model_from_checkpoint
from main.tester import evaluate, setup_testing

log = logging.getLogger('sefd')
METRICS = ('mpjpe', 'pa_mpjpe', 'mpvpe')
HIDDEN = ('occlusion', '67-100%')     # the group and label of the most hidden third (data/PW3D/PW3D.py)
DESCRIPTIONS = {
    'given': 'as given (its crop, its edge map)',
    'image_swapped': 'images (and edges) of other people, pose kept',
    'grey': 'a uniform grey image, edge map zero',
    'edge_zero': 'edge map zero',
    'edge_swapped': 'edge maps of other people',
}


class Swap:
    """Each sample gets the tensor of the sample half a batch away (a rotation of the batch: with the test loader's
    order, mostly a person of another image, not an overlapping crop of the same crowd); a batch of one gets the
    previous batch's first sample, so nobody keeps their own."""

    def __init__(self):
        self.previous = {}

    def __call__(self, key, x):
        if x.shape[0] > 1:
            out = torch.roll(x, -(x.shape[0] // 2), dims=0)
        elif key in self.previous:
            out = self.previous[key][:1].to(x.dtype)
        else:
            raise UserError('the input probe needs at least two people to swap their inputs (test.batch_size >= 2)')
        self.previous[key] = x
        return out


def alterations(model):
    """{variant: alter(inputs) -> inputs} for this model (the edge variants only where it has an edge channel)."""
    has_edge = model.cfg.in_channels == 4

    def edge_of(inputs):
        # the edge map the model would see: the loader's (teacher, loader-side edges) or computed from the crop
        return model.edge_channel(inputs)

    def image_swapped(swap):
        def alter(inputs):
            out = dict(inputs, img=swap('img', inputs['img']))
            if 'edge' in inputs:
                out['edge'] = swap('edge', inputs['edge'])
            return out
        return alter

    def grey(inputs):
        out = dict(inputs, img=torch.full_like(inputs['img'], 0.5))
        if has_edge:
            out['edge'] = torch.zeros_like(inputs['img'][:, :1])
        return out

    def edge_zero(inputs):
        return dict(inputs, edge=torch.zeros_like(inputs['img'][:, :1]))

    def edge_swapped(swap):
        return lambda inputs: dict(inputs, edge=swap('edge', edge_of(inputs)))

    out = {'given': None, 'image_swapped': image_swapped(Swap()), 'grey': grey}
    if has_edge:
        out.update(edge_zero=edge_zero, edge_swapped=edge_swapped(Swap()))
    return out


def image_gate(model):
    gate = getattr(model.rotation_net, 'image_gate', None)
    return None if gate is None else float(gate.detach())


def probe(model, dataset, cfg, device, progress=False):
    """{'gate': RotationNet's image gate or None, 'hidden_label', 'variants': {variant: {'description', 'summary',
    'hidden', 'count', 'mpjpe_moved_per_person'}}}; 'hidden' holds the metrics of the most hidden third (where the
    set records it)."""
    variants, given = {}, None
    for name, alter in alterations(model).items():
        result = evaluate(model, dataset, cfg, device, name=name, progress=progress, alter=alter)
        given = given or result
        hidden = result.groups.get(HIDDEN[0], {}).get(HIDDEN[1])
        # per person, how far the error moved (a permutation of errors leaves the mean but not this)
        moved = float(np.abs(result.samples['mpjpe'] - given.samples['mpjpe']).mean())
        variants[name] = {'description': DESCRIPTIONS[name], 'summary': result.summary, 'count': result.count,
                          'mpjpe_moved_per_person': moved,
                          'hidden': None if hidden is None else {k: hidden[k] for k in METRICS} | {
                              'count': hidden['count']}}
    return {'gate': image_gate(model), 'hidden_label': HIDDEN[1], 'variants': variants}


def change(value, given):
    return f'{value:.1f} ({(value / given - 1) * 100:+.0f}%)' if given else f'{value:.1f}'


def table_rows(report):
    """[(variant description, MPJPE, PA-MPJPE, MPVPE, hidden-third PA-MPJPE)] as strings, changes against 'given'."""
    given = report['variants']['given']
    rows = []
    for name, v in report['variants'].items():
        cells = [change(v['summary'][k], given['summary'][k] if name != 'given' else 0) for k in METRICS]
        h, hg = v['hidden'], given['hidden']
        cells.append('-' if h is None else change(h['pa_mpjpe'], hg['pa_mpjpe'] if name != 'given' else 0))
        rows.append([DESCRIPTIONS[name]] + cells)
    return rows


HEAD = ['input given to the model', 'MPJPE', 'PA-MPJPE', 'MPVPE', f'PA-MPJPE, {HIDDEN[1]} hidden']


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--ckpt', required=True, help='checkpoint file or experiment folder')
    ap.add_argument('--epoch', type=int, default=None, help='snapshot epoch (default: the newest)')
    ap.add_argument('--gpu', default='', help='GPU id; empty: GPU 0 if any, else CPU; -1: CPU')
    ap.add_argument('--out', default='', help='write the results as JSON here')
    ap.add_argument('overrides', nargs='*', help='config overrides key=value (e.g. data.test_set=Synthetic)')
    return ap.parse_intermixed_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logger()
    out = resolve_path(args.out) if args.out else None
    if out is not None:   # before minutes of testing: a folder that cannot be made fails now, in one line
        out.parent.mkdir(parents=True, exist_ok=True)
    model, cfg, _, path = model_from_checkpoint(resolve_path(args.ckpt), args.epoch, args.overrides)
    device, dataset = setup_testing(model, cfg, args.gpu)
    report = probe(model, dataset, cfg, device, progress=True)
    report.update(checkpoint=str(path), test_set=cfg.data.test_set, mode=cfg.mode, edge=cfg.edge.type)
    from tool.runs.report import markdown_table
    gate = '' if report['gate'] is None else f'; RotationNet image gate {report["gate"]:+.4f}'
    print(f'\n{path} ({cfg.mode}, edge {cfg.edge.type}{gate}), mm:\n')
    print(markdown_table(HEAD, table_rows(report)))
    if out is not None:
        atomic_write_text(out, json.dumps(report, indent=1))
        log.info(f'written to {out}')
    return report


def cli():
    run_cli(main)


if __name__ == '__main__':
    cli()
