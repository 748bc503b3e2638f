"""tool/quickstart.py --scale tiny end to end: every stage, the report and its figures, the report's numbers equal to
the result files main/test.py wrote, and a rerun that skips finished stages and continues an interrupted training."""
import json
import re
import shutil
import subprocess
import sys

import cv2
import pytest
import yaml

from common.paths import ROOT

pytestmark = [pytest.mark.usefixtures('renderer'), pytest.mark.slow]   # end-to-end runs
MODELS = {'baseline': 'baseline', 'edge_only': 'edge only', 'student': 'SEFD student', 'teacher': 'teacher'}


def quickstart(out):
    return subprocess.run([sys.executable, 'tool/quickstart.py', '--scale', 'tiny', '--out', str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def report_numbers(text):
    """{(subset, model name): (MPJPE, PA-MPJPE, MPVPE) as printed} from report.md's metrics table."""
    out, subset = {}, None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 6 or cells[2] not in MODELS.values():
            continue
        subset = cells[0] or subset
        out[(subset, cells[2])] = tuple(cells[3:])
    return out


def result_numbers(run, epochs):
    """The same, from each model's result file (found on disk, not through the quickstart's state file)."""
    out = {}
    for model, name in MODELS.items():
        (path,) = (run / 'runs' / f'{model}_s0').glob(f'*/result/metrics_Synthetic_{epochs[model] - 1}.json')
        res = json.loads(path.read_text())
        rows = {'all': res['summary']}
        for group, labels in res['groups'].items():
            rows.update({f'{group} {lab}': v for lab, v in labels.items()})
        for subset, v in rows.items():
            out[(subset, name)] = tuple(f'{v[k]:.2f}' for k in ('mpjpe', 'pa_mpjpe', 'mpvpe'))
    return out


def test_quickstart_tiny(tmp_path):
    run = tmp_path / 'qs'
    r = quickstart(run)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    preset = yaml.safe_load((ROOT / 'assets/yaml/quickstart/tiny.yml').read_text())
    epochs = {m: preset['models'][m]['epochs'] for m in MODELS}

    report = (run / 'report.md').read_text()
    for fig in ('montage.png', 'curves.png', 'occlusion.png'):
        img = cv2.imread(str(run / fig))
        assert img is not None and min(img.shape[:2]) > 150, fig
        assert f'({fig})' in report
    printed, expected = report_numbers(report), result_numbers(run, epochs)
    assert printed == expected
    assert {s for s, _ in printed} >= {'all', 'occlusion 0-33%', 'occlusion 67-100%'}
    assert any(s.startswith('people ') for s, _ in printed)
    # the same table in the terminal
    student_all = expected[('all', 'SEFD student')]
    assert re.search(r'SEFD student\s+' + r'\s+'.join(map(re.escape, student_all)), r.stdout), r.stdout[-3000:]
    # fairness: both students start from the teacher; the epochs each model saw
    for m in ('student', 'edge_only'):
        cfg = yaml.safe_load(next((run / 'runs' / f'{m}_s0').glob('*/config.yaml')).read_text())
        assert 'teacher_s0' in cfg['distill']['teacher_ckpt'] and cfg['distill']['init_from_teacher']
    start = {'': 'scratch', 'imagenet': 'ImageNet weights'}[preset['common'].get('model.pretrained', '')]
    assert f'| baseline | {start} | {epochs["baseline"]} |' in report
    # the input probe: every model as given and with its inputs altered, the oracle against a same-epoch baseline
    probe = report[report.index('## Does each model use its image and edge map?'):]
    for name in MODELS.values():
        assert f'| {name} | as given' in probe
    assert probe.count('| edge map zero |') == 3 and 'The oracle on the most hidden third' in probe
    (path,) = (run / 'runs' / 'teacher_s0').glob(f'*/result/probe_{epochs["teacher"] - 1}.json')
    given = json.loads(path.read_text())['variants']['given']
    assert f"| teacher | as given (its crop, its edge map) | {given['summary']['mpjpe']:.1f} |" in probe

    # rerun after losing the baseline's last epoch: the baseline continues from its first snapshot, the other
    # stages are not run again, the report is rebuilt from the new result file
    (base,) = (run / 'runs' / 'baseline_s0').iterdir()
    (base / 'checkpoint' / f'snapshot_{epochs["baseline"] - 1}.pth.tar').unlink()
    for p in (base / 'result').iterdir():
        p.unlink()
    others = {p: p.stat().st_mtime_ns for p in (run / 'runs').glob('*_s0/*/checkpoint/*.pth.tar')}
    r = quickstart(run)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    # skipped: data, the three other trainings, their tests and their probes (the baseline's result folder, with the
    # probes of both its epochs, was emptied)
    assert r.stdout.count('done before, skipped') == 10 and 'continuing ' in r.stdout, r.stdout[-3000:]
    assert 'resumed from' in (base / 'log' / 'train.log').read_text()
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())
    assert (base / 'checkpoint' / f'snapshot_{epochs["baseline"] - 1}.pth.tar').is_file()
    assert report_numbers((run / 'report.md').read_text()) == result_numbers(run, epochs)
    shutil.rmtree(run / 'runs')   # ~1 GB of checkpoints


def test_seeds_are_reported_as_mean_and_sample_std():
    from tool.runs.report import REPORT_ORDER, metrics_table, table_rows

    def result(v):
        return {'summary': {'mpjpe': v, 'pa_mpjpe': v / 2, 'mpvpe': v + 1}, 'count': 5,
                'groups': {'occlusion': {'67-100%': {'mpjpe': v, 'pa_mpjpe': v, 'mpvpe': v, 'count': 2}}}}
    results = {m: [result(100.0 + i), result(104.0 + i)] for i, m in enumerate(REPORT_ORDER)}
    table = metrics_table(table_rows(results))
    # baseline: 100 and 104 -> mean 102, sample std sqrt(8) = 2.83; halves: 51 +- 1.41
    assert '| all | 5 | baseline | 102.00 ± 2.83 | 51.00 ± 1.41 | 103.00 ± 2.83 |' in table
    assert '| occlusion 67-100% | 2 | baseline | 102.00 ± 2.83 |' in table
    assert '|  |  | teacher | 105.00 ± 2.83 |' in table


def test_paired_difference_matches_samples_by_annotation(tmp_path):
    """a - b per annotation id (b stored in another order, one id only in a): differences 1, 2, 3 -> mean 2,
    standard error std(ddof=1) / sqrt(3) = 1 / sqrt(3)."""
    import numpy as np

    from tool.runs.report import paired_difference
    np.savez(tmp_path / 'a.npz', ann_id=np.array([7, 3, 5, 9]), pa_mpjpe=np.array([11.0, 22.0, 33.0, 99.0]))
    np.savez(tmp_path / 'b.npz', ann_id=np.array([5, 7, 3]), pa_mpjpe=np.array([30.0, 10.0, 20.0]))
    mean, se, n = paired_difference(tmp_path / 'a.npz', tmp_path / 'b.npz')
    assert n == 3 and mean == pytest.approx(2.0) and se == pytest.approx(1 / np.sqrt(3))
