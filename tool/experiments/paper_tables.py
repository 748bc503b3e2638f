"""Every test set of SEFD's Tables 4 and 5 whose files are here, for one checkpoint, in the papers' layout.

    python tool/experiments/paper_tables.py --ckpt output/<experiment>          # newest snapshot; or a checkpoint file
    python tool/experiments/paper_tables.py --ckpt <file> --gpu 0 --out table    # table.md and table.json

Each present set runs `main/test.py --ckpt <ckpt> data.test_set=<set> ...` (its result files land in the
experiment's result/ folder, as any test); a set whose files are missing is a "not present" row naming the file
that would make it present. Where a set has no stand-in on this machine, the synthetic one stands in (made from
data/Synthetic, or --synthetic): the synthetic test split for the 3DPW rows, and that split written as OCHuman and
LSP files (tool/make_data/make_keypoint_benchmarks.py) for the AP and PCKh rows, each row marked as a stand-in. SEFD's
and 3DCrowdNet's published numbers sit beside ours; AP is shown in percent as the papers do.
"""
import argparse
import json
import tempfile
from pathlib import Path

from common.errors import UserError, run_cli
from common.io import atomic_write_text
from common.paths import ROOT, resolve_path
from tool.runs.stages import rel, run_script

MESH = ('mpjpe', 'pa_mpjpe', 'mpvpe')
AP = ('ap', 'ap50', 'ap75')
PCKH = ('pckh',)
# (table, row, test set, overrides, the file that makes it present (under data.root), metrics, SEFD, 3DCrowdNet)
ROWS = [
    ('4', '3DPW', 'PW3D', [], 'PW3D/data/3DPW_latest_test.json', MESH, (77.4, 49.4, 92.6), (81.7, 51.5, 98.3)),
    ('5', '3DPW-OCC', 'PW3D', ['test.subset=occ'], 'PW3D/data/3DPW_latest_test.json', MESH, (83.48, 55.0, 97.12),
     (88.61, 56.79, 103.22)),
    ('5', '3DPW-PC', 'PW3D', ['test.subset=pc'], 'PW3D/data/3DPW_latest_test.json', MESH, (85.92, 54.94, 100.50),
     (88.77, 57.26, 105.68)),
    ('5', 'OCHuman', 'OCHuman', [], 'OCHuman/annotations/ochuman_coco_format_test_range_0.00_1.00.json', AP,
     (44.1, 71.7, 47.2), (39.7, 68.8, 41.0)),
    ('5', 'CrowdPose', 'CrowdPose', [], 'CrowdPose/annotations/crowdpose_test.json', AP, (29.0, 48.8, 30.0),
     (25.2, 44.9, 24.9)),
    ('5', 'LSP', 'LSP', [], 'LSP/joints.mat', PCKH, (0.8315,), (0.8186,)),
    ('5', 'RH-dataset', None, [], '', PCKH, (0.8259,), (0.8019,)),
    ('-', 'LSPET', 'LSPET', [], 'LSPET/joints.mat', PCKH, None, None),
    ('-', '3DOH50K', None, [], '', MESH, None, None),
    ('-', 'AGORA', None, [], '', MESH, None, None),
]
# why a row has no loader: what public material does not establish (docs/data.md)
NO_LOADER = {
    'RH-dataset': 'format unknown: no public description of its files was found',
    '3DOH50K': "format unknown: annots.json's fields are public (pose, betas, scale, trans, intri, extri), how its "
               "scale enters the mesh is not",
    'AGORA': 'not read: its annotations are pickled pandas frames, whose loading runs code',
}
STAND_INS = {'PW3D': 'Synthetic', 'OCHuman': 'OCHuman', 'LSP': 'LSP'}   # the synthetic set in that set's files


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--ckpt', required=True, help='checkpoint file or experiment folder (its newest snapshot)')
    ap.add_argument('--data', default='', help="data.root with the datasets (default: this repository's data/)")
    ap.add_argument('--synthetic', default='', help='the synthetic set for the stand-ins (default: data/Synthetic)')
    ap.add_argument('--gpu', default='', help='main/test.py --gpu')
    ap.add_argument('--out', default='', help='table stem (default: <experiment>/result/benchmark_table)')
    return ap.parse_args(argv)


def run_test(ckpt, test_set, overrides, data_root, gpu, result_dir):
    """main/test.py on one set, its result files in result_dir (not the experiment's: a stand-in must not pass for
    a test of the experiment's own set); returns (summary, protocol, samples) read from the result file."""
    from main.config import load_config
    from main.test import result_stem
    argv = ['--ckpt', ckpt, '--result_dir', result_dir, f'data.root={data_root}', f'data.test_set={test_set}',
            *overrides] + (['--gpu', gpu] if gpu else [])
    log = result_dir / 'test.log'
    if run_script('main/test.py', argv, log=log) != 0:
        raise UserError(f'main/test.py failed on {test_set} {" ".join(overrides)}; its output is in {log}')
    cfg = load_config(None, [f'data.test_set={test_set}', *overrides])
    result = json.loads((result_dir / f'{result_stem(cfg, ckpt)}.json').read_text())
    return result['summary'], result.get('protocol', ''), result['count']


def shown(metric, value):
    return f'{100 * value:.1f}' if metric in AP else f'{value:.4f}' if metric in PCKH else f'{value:.2f}'


def stand_in_root(synthetic, work, log):
    """data.root holding the synthetic set and its keypoint-benchmark copies, or None without a synthetic set."""
    if not (synthetic / 'data' / '3DPW_latest_test.json').is_file():
        return None
    root = Path(work)
    (root / 'Synthetic').symlink_to(synthetic, target_is_directory=True)
    if run_script('tool/make_data/make_keypoint_benchmarks.py', ['--root', root / 'Synthetic', '--out', root],
                  log=log) != 0:
        raise UserError(f'making the keypoint stand-ins failed; its output is in {log}')
    return root


def main(argv=None):
    args = parse_args(argv)
    from main.checkpoint import latest_checkpoint
    data_root = resolve_path(args.data) if args.data else ROOT / 'data'
    synthetic = resolve_path(args.synthetic) if args.synthetic else ROOT / 'data' / 'Synthetic'
    ckpt = latest_checkpoint(resolve_path(args.ckpt))
    exp = ckpt.parent.parent if ckpt.parent.name == 'checkpoint' else ckpt.parent
    out = resolve_path(args.out) if args.out else exp / 'result' / 'benchmark_table'
    results = {'real': out.parent / f'{out.name}_results', 'stand-in': out.parent / f'{out.name}_stand_ins'}
    done = {}

    def test(kind, test_set, overrides, root):   # the synthetic stand-in of the three 3DPW rows runs once
        key = (kind, test_set, tuple(overrides))
        if key not in done:
            done[key] = run_test(ckpt, test_set, overrides, root, args.gpu, results[kind])
        return done[key]

    rows = []
    with tempfile.TemporaryDirectory(dir=ROOT / 'output') as work:
        stand_ins = None
        for table, row, test_set, overrides, needs, metrics, sefd, crowdnet in ROWS:
            entry = {'table': table, 'row': row, 'metrics': list(metrics), 'sefd': sefd, '3dcrowdnet': crowdnet}
            if test_set is None:
                entry['status'] = NO_LOADER[row]
            elif (data_root / needs).is_file():
                print(f'{row}: testing', flush=True)
                entry['ours'], entry['protocol'], entry['count'] = test('real', test_set, overrides, data_root)
                entry['status'] = 'measured'
            else:
                entry['status'] = f'not present: {rel(data_root / needs)}'
                if test_set in STAND_INS:
                    stand_ins = stand_ins or stand_in_root(synthetic, work, results['stand-in'] / 'make.log') or False
                if test_set in STAND_INS and stand_ins and (stand_ins / STAND_INS[test_set]).exists():
                    print(f'{row}: not present; testing the synthetic stand-in', flush=True)
                    # the synthetic test split has no named subsets: the -OCC / -PC rows get the whole split
                    entry['ours'], entry['protocol'], entry['count'] = test(
                        'stand-in', STAND_INS[test_set], [] if test_set == 'PW3D' else overrides, stand_ins)
                    entry['status'] += '; synthetic stand-in'
            rows.append(entry)
    if stand_ins is False:
        print(f'no synthetic set at {rel(synthetic)} for the stand-ins '
              f'(make one: python tool/make_data/make_synthetic.py)')
    atomic_write_text(out.with_suffix('.json'), json.dumps({'checkpoint': str(ckpt), 'rows': rows}, indent=1))
    atomic_write_text(out.with_suffix('.md'), markdown(ckpt, rows))
    print(markdown(ckpt, rows))
    print(f'written to {out}.md and .json (test results and output: {rel(results["real"])}, '
          f'{rel(results["stand-in"])})')


def markdown(ckpt, rows):
    lines = [f'Checkpoint: `{rel(ckpt)}`. MPJPE, PA-MPJPE, MPVPE in mm; AP, AP50, AP75 in %; PCKh@0.6 as a fraction.',
             '', '| table | test set | metrics | ours | SEFD | 3DCrowdNet | samples | status |',
             '|---|---|---|---|---|---|---|---|']
    for r in rows:
        ours = ' / '.join(shown(m, r['ours'][m]) for m in r['metrics']) if 'ours' in r else '-'
        pub = lambda v: ' / '.join(str(x) for x in v) if v else '-'  # noqa: E731
        names = ' / '.join(m.upper().replace('_', '-') for m in r['metrics'])
        lines.append(f'| {r["table"]} | {r["row"]} | {names} | {ours} | {pub(r["sefd"])} | {pub(r["3dcrowdnet"])} | '
                     f'{r.get("count", "-")} | {r["status"]} |')
    protocols = sorted({r['protocol'] for r in rows if r.get('protocol')})
    return '\n'.join(lines + [''] + [f'- {p}' for p in protocols]) + '\n'


if __name__ == '__main__':
    run_cli(main)
