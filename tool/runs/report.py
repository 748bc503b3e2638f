"""The quickstart's report: its four models, the metrics tables (per subset, with the constant-mean-mesh reference row),
paired per-sample differences, and report.md / results.json of a run folder (tool/quickstart.py)."""
import json
import subprocess
import time

import numpy as np

from common.errors import UserError
from common.io import atomic_write_text
from common.paths import ROOT
from tool.runs.stages import METRIC_NAMES, METRICS, fmt_value, machine, mean_std, rel

# the quickstart's four models: the order they train in (students need the teacher) and the order of the report
TRAIN_ORDER = ('teacher', 'student', 'edge_only', 'baseline')   # students need the teacher
REPORT_ORDER = ('baseline', 'edge_only', 'student', 'teacher')
NAMES = {'baseline': 'baseline', 'edge_only': 'edge only', 'student': 'SEFD student', 'teacher': 'teacher',
         'baseline_short': "baseline at the teacher's epochs"}
LONG_NAMES = {'baseline': '3DCrowdNet baseline (RGB + 2D pose)',
              'edge_only': 'edge-only student (RGB + Canny, no distillation)',
              'student': 'SEFD student (RGB + Canny, distilled from the teacher)',
              'teacher': 'teacher (RGB + SMPL overlap edge from the GT: an oracle)'}


def load_results(qs):
    """{model: [per-seed result json dict]} and {model: [per-seed npz path]}."""
    results, npz = {}, {}
    for model in REPORT_ORDER:
        for seed in qs.seeds:
            path = qs.result_json(model, seed)
            if path is None:
                raise UserError(f'no test result for {model} seed {seed} in {qs.stage_dir(model, seed)}; rerun the '
                                f'quickstart')
            results.setdefault(model, []).append(json.loads(path.read_text()))
            npz.setdefault(model, []).append(path.with_suffix('.npz'))
    return results, npz


def table_rows(results):
    """[(subset label, {model: {metric: [values over seeds]}, 'count'})] : all, occlusion levels, people."""
    first = results[REPORT_ORDER[0]][0]
    rows = [('all', lambda r: r['summary'], first['count'])]
    for group, title in (('occlusion', 'occlusion'), ('people', 'people')):
        for lab, vals in first.get('groups', {}).get(group, {}).items():
            rows.append((f'{title} {lab}', lambda r, g=group, lb=lab: r['groups'][g][lb], vals['count']))
    out = []
    for label, get, count in rows:
        per_model = {m: {k: [get(r)[k] for r in results[m]] for k in METRICS} for m in REPORT_ORDER}
        out.append((label, count, per_model))
    return out


REFERENCE = 'constant mean mesh (reference)'


def markdown_table(head, rows, left=1):
    """A markdown table of string cells: the first `left` columns left-aligned, the numbers after them right."""
    out = ['| ' + ' | '.join(head) + ' |', '|' + '|'.join(['---'] * left + ['---:'] * (len(head) - left)) + '|']
    return '\n'.join(out + ['| ' + ' | '.join(r) + ' |' for r in rows])


def metrics_table(rows, markdown=True, reference=None):
    """The metrics table; reference ({metric: value}: one constant mesh) is a row under the models on all samples."""
    head = ['subset', 'samples', 'model'] + [f'{METRIC_NAMES[k]} (mm)' for k in METRICS]
    lines = []
    for r, (label, count, per_model) in enumerate(rows):
        for i, m in enumerate(REPORT_ORDER):
            lines.append([label if i == 0 else '', str(count) if i == 0 else '', NAMES[m]] +
                         [fmt_value(per_model[m][k]) for k in METRICS])
        if r == 0 and reference:
            lines.append(['', '', REFERENCE] + [fmt_value([reference[k]]) for k in METRICS])
    if markdown:
        return markdown_table(head, lines, left=3)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(head)]
    fmt = lambda r: '  '.join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa
    sep = [fmt(head), '-' * len(fmt(head))]
    body, prev = [], None
    for r in lines:
        if r[0] and prev is not None:
            body.append('')
        body.append(fmt(r))
        prev = r
    return '\n'.join(sep + body)


def paired_difference(npz_a, npz_b, metric='pa_mpjpe'):
    """Mean and standard error of the per-sample difference a - b (same test samples, matched by ann_id)."""
    da, db = np.load(npz_a), np.load(npz_b)
    ia = {int(k): i for i, k in enumerate(da['ann_id'])}
    pairs = [(da[metric][ia[int(k)]], db[metric][j]) for j, k in enumerate(db['ann_id']) if int(k) in ia]
    if not pairs:
        return float('nan'), float('nan'), 0
    d = np.asarray([a - b for a, b in pairs], float)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float('nan'), len(d)


def rows_from_summary(summary):
    """table_rows()'s rows back from a results.json summary (docs tables are made from the committed file)."""
    return [(r['subset'], r['samples'], {m: {k: r['models'][m][k]['values'] for k in METRICS} for m in REPORT_ORDER})
            for r in summary['rows']]


def ranking(rows):
    """'edge only 137.2 < SEFD student 137.4 < ...': the models by mean PA-MPJPE on all samples, best first."""
    pa = {m: mean_std(rows[0][2][m]['pa_mpjpe'])[0] for m in REPORT_ORDER}
    return ' < '.join(f'{NAMES[m]} {pa[m]:.1f}' for m in sorted(REPORT_ORDER, key=pa.get))


def distillation_summary(npz):
    """The paired differences of seed 0 (SEFD student − edge-only student, − baseline) and the per-seed ones."""
    d, se, n = paired_difference(npz['student'][0], npz['edge_only'][0])
    d2, se2, _ = paired_difference(npz['student'][0], npz['baseline'][0])
    # between seeds training varies more than the per-sample error bar says: the per-seed differences
    per_seed = [paired_difference(a, b)[0] for a, b in zip(npz['student'], npz['edge_only'])]
    return {'student_minus_edge_only': {'mean': d, 'se': se, 'samples': n, 'per_seed': per_seed},
            'student_minus_baseline': {'mean': d2, 'se': se2}}


def comparison_lines(rows, dist):
    """The report's reading of the numbers: the ranking and the distillation effect with its standard error."""
    a, b = dist['student_minus_edge_only'], dist['student_minus_baseline']
    per_seed = a['per_seed']
    seeds_line = (f' Per seed: {", ".join(f"{x:+.2f}" for x in per_seed)} mm (mean {np.mean(per_seed):+.2f} ± '
                  f'{np.std(per_seed, ddof=1):.2f}, sample std over seeds).') if len(per_seed) > 1 else ''
    return [f'PA-MPJPE on all samples, best first: {ranking(rows)}.',
            f'Distillation (SEFD student − edge-only student, same test samples, seed 0): PA-MPJPE {a["mean"]:+.2f} mm '
            f'± {a["se"]:.2f} (standard error of the per-sample differences, {a["samples"]} samples); SEFD student − '
            f'baseline: {b["mean"]:+.2f} ± {b["se"]:.2f} mm. A difference within about two standard errors is not a '
            f'finding.{seeds_line}']


def git_commit():
    """The short commit of the code that ran ('' outside a git clone); '+' when the tree had changes."""
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                              timeout=10)
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ''
    return head.stdout.strip() + ('+' if dirty.stdout.strip() else '') if head.returncode == 0 else ''


def exp_config(qs, model, seed=0):
    from main.config import load_saved_config
    exp = qs.find_exp(qs.stage_dir(model, seed))
    return load_saved_config(exp / 'config.yaml'), exp


def constant_mesh_reference(qs):
    """{metric: mm} of the mean training mesh predicted for every test person (main/tester.py), or None."""
    from data.dataset import get_dataset_class
    from main.tester import mean_mesh_reference
    cfg, _ = exp_config(qs, 'baseline')
    try:
        return mean_mesh_reference(cfg, get_dataset_class(cfg.data.test_set)(cfg, 'test'))
    except UserError:   # the test set has no training split to take a mean from
        return None


def load_probes(qs):
    """{model: tool/experiments/probe_inputs.py report} of the probe stages that ran (seed 0)."""
    out = {}
    for model in qs.probed_models():
        path = qs.probe_target(model)[2]
        if path is not None and path.is_file():
            out[model] = json.loads(path.read_text())
    return out


def probe_section(probes):
    """The report's lines on whether each model uses its image and edge map (tool/experiments/probe_inputs.py)."""
    if not probes:
        return []
    label = next(iter(probes.values()))['hidden_label']
    head = ['model', 'input given to the model', 'MPJPE', 'PA-MPJPE', f'PA-MPJPE, {label} hidden',
            'MPJPE moved per person']
    rows = []
    for model, rep in probes.items():
        given = rep['variants']['given']
        for i, (name, v) in enumerate(rep['variants'].items()):
            pct = lambda a, b: f'{a:.1f}' if name == 'given' else f'{a:.1f} ({(a / b - 1) * 100:+.0f}%)'  # noqa
            h = '-' if v['hidden'] is None else pct(v['hidden']['pa_mpjpe'], given['hidden']['pa_mpjpe'])
            rows.append([NAMES[model] if i == 0 else '', v['description'], pct(v['summary']['mpjpe'],
                         given['summary']['mpjpe']), pct(v['summary']['pa_mpjpe'], given['summary']['pa_mpjpe']), h,
                         '' if name == 'given' else f'{v["mpjpe_moved_per_person"]:.1f}'])
    gates = ', '.join(f'{NAMES[m]} {r["gate"]:+.3f}' for m, r in probes.items() if r.get('gate') is not None)
    lines = ['## Does each model use its image and edge map?', '',
             "Seed 0's models tested with their inputs altered "
             "(`python tool/experiments/probe_inputs.py --ckpt <experiment>`): "
             "the crops (and a teacher's edge maps) swapped between people (mostly of other images), each "
             "person's input 2D pose kept, a uniform grey image, and the edge map zeroed or swapped with the image "
             "kept. A model that lifts the 2D pose and ignores the rest does not move; in brackets the change against the model as "
             "given; the last column is the mean over people of how far each one's MPJPE moved (mm).", '',
             markdown_table(head, rows, left=2), '']
    if gates:
        lines += [f"RotationNet's image gate (the weight of the image features beside the input pose): {gates}.", '']
    teacher, short = probes.get('teacher'), probes.get('baseline_short') or probes.get('baseline')
    th = teacher and teacher['variants']['given']['hidden']
    bh = short and short['variants']['given']['hidden']
    if th and bh:
        zero = teacher['variants']['edge_zero']['hidden']['pa_mpjpe']
        swap = teacher['variants']['edge_swapped']['hidden']['pa_mpjpe']
        lines += [f'The oracle on the most hidden third ({th["count"]} people): teacher {th["pa_mpjpe"]:.1f} mm '
                  f'PA-MPJPE against {bh["pa_mpjpe"]:.1f} for the baseline trained as many epochs '
                  f'({(th["pa_mpjpe"] / bh["pa_mpjpe"] - 1) * 100:+.0f}%); its edge map zeroed {zero:.1f} '
                  f'({(zero / th["pa_mpjpe"] - 1) * 100:+.0f}%), swapped between people {swap:.1f} '
                  f'({(swap / th["pa_mpjpe"] - 1) * 100:+.0f}%).', '']
    return lines


def write_report(qs, rows, npz, ann_ids):
    """report.md and results.json of the finished run `qs` (a tool.quickstart.Quickstart): rows of table_rows(),
    npz of load_results(), ann_ids: the montage's crops."""
    from common.body.smpl import find_official_model
    run = qs.run_dir
    reference = constant_mesh_reference(qs)
    probes = load_probes(qs)
    pretrained = (qs.preset.get('common') or {}).get('model.pretrained', '')
    start = {'': 'scratch', 'imagenet': 'ImageNet weights'}.get(pretrained, f'`{pretrained}`')

    seeds = len(qs.seeds)
    st = qs.state.stages
    ep = {m: qs.epochs(m) for m in TRAIN_ORDER}
    n_train = qs.train_samples() if qs.synthetic else None
    procedural = find_official_model(None, 'neutral') is None
    mach = qs.state.data.get('machine') or machine()
    times = {m: [st.get(f'{m}_s{s}', {}).get('seconds', 0.0) for s in qs.seeds] for m in TRAIN_ORDER}
    total = sum(s.get('seconds', 0.0) for k, s in st.items() if k != 'report')
    spec = qs.preset.get('common') or {}

    dist = distillation_summary(npz)
    comparison = comparison_lines(rows, dist)

    lines = [f'# Quickstart report: scale {qs.args.scale}', '',
             f'{qs.preset.get("description", "")}. Settings: `{rel(qs.preset_path)}`; {seeds} seed(s) per model'
             f'{" (mean ± sample std over seeds)" if seeds > 1 else ""}; test set: {qs.test_set()} test split '
             f'({rows[0][1]} people).', '']
    if procedural:
        lines += ['**Body model: the procedural stand-in** (no official SMPL files): the numbers are not comparable '
                  'to published ones.', '']
    lines += ['## Metrics (mm, lower is better)', '', metrics_table(rows, reference=reference), '', *comparison, '',
              *probe_section(probes),
              '## What each model saw (fairness)', '',
              '| model | starts from | epochs of its own | epochs in total | input at test time |',
              '|---|---|---:|---:|---|',
              f'| {NAMES["baseline"]} | {start} | {ep["baseline"]} | {ep["baseline"]} | RGB + 2D pose |',
              f'| {NAMES["teacher"]} | {start} | {ep["teacher"]} | {ep["teacher"]} | RGB + 2D pose + SMPL overlap '
              f'edge rendered from the GT (an oracle) |',
              f'| {NAMES["edge_only"]} | the teacher | {ep["edge_only"]} | {ep["teacher"] + ep["edge_only"]} | '
              f'RGB + 2D pose + Canny |',
              f'| {NAMES["student"]} | the teacher | {ep["student"]} | {ep["teacher"] + ep["student"]} | '
              f'RGB + 2D pose + Canny |', '',
              'Both students start from the weights of the teacher of their seed and train the same epochs with the '
              'same settings; only the distilled one adds the distillation loss (log_softmax_l1 on backbone stages '
              '3 and 4, the frozen teacher seeing the SMPL overlap edge): the edge-only row isolates the effect of '
              'the distillation loss. The teacher sees the ground-truth overlap edge at test time too: it is an '
              'upper bound, not a usable model.', '']
    if n_train is not None:
        n_img = len(json.loads((qs.data_root / 'Synthetic' / 'data' / '3DPW_latest_train.json').read_text())['images'])
        lines += [f'Training data: {n_train} people in {n_img} synthetic '
                  f'images (`{rel(qs.data_root / "Synthetic")}`), batch {spec.get("train.batch_size", 64)}, '
                  f'{spec.get("model.backbone", "resnet50")} at {spec.get("model.input_size", 256)} px.', '']
    lines += ['## Figures', '',
              f'Qualitative: the most occluded test crops (annotation ids {", ".join(map(str, ann_ids))}); the '
              f'student\'s Canny input, the SMPL overlap edge (the teacher\'s input), each model\'s mesh, the GT.', '',
              '![montage](montage.png)', '', '![training curves](curves.png)', '',
              '![error by occlusion level](occlusion.png)', '',
              '## Machine and time', '',
              f'{mach["cpu"]}, {mach["cores"]} cores{", GPU " + mach["gpu"] if mach.get("gpu") else ""}; torch '
              f'{mach["torch"]}, Python {mach["python"]}; load average at the start {mach.get("load")}.', '',
              '| stage | minutes |', '|---|---:|']
    for name, rec in st.items():
        if name != 'report' and 'seconds' in rec:
            lines.append(f'| {name} | {rec["seconds"] / 60:.1f} |')
    lines += [f'| **total** | **{total / 60:.1f}** |', '',
              'Experiment folders (checkpoints, logs, TensorBoard, result files):', '']
    for m in REPORT_ORDER:
        for s in qs.seeds:
            lines.append(f'- {NAMES[m]}, seed {s}: `{st.get(f"{m}_s{s}", {}).get("exp_dir", "?")}` '
                         f'(result `{st.get(f"test_{m}_s{s}", {}).get("result", "?")}`)')
    atomic_write_text(run / 'report.md', '\n'.join(lines) + '\n')
    summary = {'scale': qs.args.scale, 'seeds': seeds, 'test_set': qs.test_set(),
               'rows': [{'subset': label, 'samples': count, 'models': {
                   m: {k: {'values': pm[m][k], 'mean': mean_std(pm[m][k])[0], 'std': mean_std(pm[m][k])[1]}
                       for k in METRICS} for m in REPORT_ORDER}} for label, count, pm in rows],
               'epochs': ep, 'train_minutes': {m: [t / 60 for t in times[m]] for m in TRAIN_ORDER},
               'total_minutes': total / 60, 'machine': mach, 'procedural_body_model': procedural,
               'constant_mean_mesh': reference, 'probe': probes, 'distillation': dist, 'commit': git_commit(),
               'date': time.strftime('%Y-%m-%d', time.gmtime())}
    atomic_write_text(run / 'results.json', json.dumps(summary, indent=1))
    print('\n' + metrics_table(rows, markdown=False, reference=reference) + '\n')
    print('\n'.join(comparison))
    print(f'report: {run / "report.md"} (figures: montage.png, curves.png, occlusion.png)')
