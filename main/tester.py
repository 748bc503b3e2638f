"""Evaluation loop (test.py, and validation during training): run a model over a test set, collect per-sample
metrics and predictions, summarise them overall and by group (occlusion level, people per image).

A test set provides `evaluate(out, targets) -> {metric: per-sample values (mm)}` and may provide
`groups(meta) -> {group: per-sample labels}` (PW3D/Synthetic: people per image, and the occlusion level when
the annotations record each person's hidden fraction). Sets whose metric is not a per-sample mean (keypoint AP,
PCKh: data/formats/keypoint_benchmark.py) provide `collect(out, meta) -> {name: [B,...] arrays}`, kept per sample,
and `summarize(samples) -> {metric: value}`.
"""
import json
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from common.errors import UserError
from common.io import atomic_np_save, atomic_write_text
from common.metrics import MetricAccumulator
from common.runtime import amp_context, parse_gpus, to_device
from data.dataset import get_dataset_class
from data.loader import make_loader

log = logging.getLogger('sefd')
PREDICTIONS = ('pose', 'shape', 'cam_trans')
UNITLESS = ('ap', 'ap50', 'ap75', 'pckh')   # fractions; every other metric is in mm


@dataclass
class EvalResult:
    name: str
    summary: dict                               # {metric: mean over all samples}
    groups: dict = field(default_factory=dict)  # {group: {label: {metric: mean, 'count': n}}}
    samples: dict = field(default_factory=dict)  # {key: [N,...] array}: ann_id, metrics, predictions, bbox
    protocol: str = ''                           # how the inputs were made, where the set has a choice
    skipped: int = 0                             # samples that could not be read (left out, not replaced)

    @property
    def count(self):
        return len(self.samples.get('ann_id', ()))

    def line(self):
        return ', '.join(f'{k.upper()} {v:.{4 if k in UNITLESS else 2}f}{"" if k in UNITLESS else " mm"}'
                         for k, v in self.summary.items()) + f' ({self.count} samples' + \
            (f', {self.skipped} unreadable left out)' if self.skipped else ')')

    def table(self):
        """The metrics as a plain-text table: overall, then each group's labels."""
        metrics = list(self.summary)
        rows = [('all', self.summary, self.count)]
        for g, labels in self.groups.items():
            rows += [(f'{g} {lab}', vals, vals['count']) for lab, vals in labels.items()]
        w = max(len(r[0]) for r in rows) + 2
        head = f'{self.name:<{w}}' + ''.join(f'{m.upper():>11}' for m in metrics) + f'{"samples":>9}'
        lines = [head, '-' * len(head)]
        for label, vals, n in rows:
            lines.append(f'{label:<{w}}' + ''.join(f'{vals[m]:>11.{4 if m in UNITLESS else 2}f}' for m in metrics)
                         + f'{n:>9d}')
        return '\n'.join(lines)

    def to_json(self):
        out = {'name': self.name, 'summary': self.summary, 'groups': self.groups, 'count': self.count,
               'skipped': self.skipped}
        return {**out, 'protocol': self.protocol} if self.protocol else out

    def save(self, result_dir, stem):
        """result/<stem>.npz (per-sample metrics and predictions), then result/<stem>.json (metrics), each atomically:
        a .json (what tools look for) always has its .npz."""
        atomic_np_save(result_dir / f'{stem}.npz', **self.samples)
        atomic_write_text(result_dir / f'{stem}.json', json.dumps(self.to_json(), indent=1))


def group_summary(values, labels):
    """{label: {metric: mean, 'count': n}} for each distinct label (sorted; unlabelled samples skipped)."""
    out = {}
    for lab in sorted(set(labels) - {''}, key=_label_key):
        sel = np.asarray([x == lab for x in labels])
        out[lab] = {k: float(v[sel].mean()) for k, v in values.items()}
        out[lab]['count'] = int(sel.sum())
    return out


def _label_key(label):
    digits = ''.join(c for c in label.split('-')[0] if c.isdigit())
    return (int(digits) if digits else 0, label)


def setup_testing(model, cfg, gpu):
    """(device, test set) of a loaded model: the model moved to the GPU `gpu` names (common.runtime.parse_gpus; CPU
    when none) and its config's test set, which must have samples."""
    gpus = parse_gpus(gpu)
    device = torch.device('cuda', gpus[0]) if gpus else torch.device('cpu')
    model.to(device)
    dataset = get_dataset_class(cfg.data.test_set)(cfg, 'test')
    if len(dataset) == 0:
        raise UserError(f'{cfg.data.test_set} test set (subset {cfg.test.subset!r}) has no samples')
    return device, dataset


@torch.no_grad()
def evaluate(model, dataset, cfg, device, name=None, progress=True, alter=None):
    """Run `model` (eval mode, restored afterwards) over `dataset`; returns an EvalResult. alter(inputs) -> inputs,
    when given, changes each batch's model inputs (tool/experiments/probe_inputs.py), never its targets."""
    loader = make_loader(dataset, cfg, cfg.test.batch_size, device, evaluation=True)
    acc, preds, labels = MetricAccumulator(), {k: [] for k in PREDICTIONS + ('ann_id', 'bbox')}, {}
    was_training = model.training
    model.eval()
    skipped, why = 0, ''
    try:
        for batch, left_out in tqdm(loader, desc=f'test {dataset.name}', dynamic_ncols=True, disable=not progress):
            skipped += len(left_out)
            why = why or next(iter(left_out), '')
            if batch is None:
                continue
            inputs, targets, meta = batch
            inputs = to_device(inputs, device)
            with amp_context(cfg.train.amp, device):
                out = model(alter(inputs) if alter else inputs, mode='test')
            out = {k: v.float().cpu() for k, v in out.items()}
            acc.add(dataset.evaluate(out, targets))
            for k in PREDICTIONS:
                preds[k].append(out[k].numpy())
            preds['ann_id'].append(meta['ann_id'].numpy())
            preds['bbox'].append(meta['bbox'].numpy() if 'bbox' in meta else np.zeros((len(meta['ann_id']), 4)))
            for k, v in (dataset.collect(out, meta) if hasattr(dataset, 'collect') else {}).items():
                preds.setdefault(k, []).append(v)
            for g, labs in (dataset.groups(meta) if hasattr(dataset, 'groups') else {}).items():
                labels.setdefault(g, []).extend(labs)
    finally:
        model.train(was_training)
    if not preds['ann_id']:
        raise UserError(f'{dataset.name} {dataset.split}: none of its {len(dataset)} samples could be read, e.g. {why}')
    values = acc.per_sample()
    samples = {k: np.concatenate(v) for k, v in preds.items()}
    samples.update(values)
    groups = {g: group_summary(values, labs) for g, labs in labels.items()}
    groups = {g: v for g, v in groups.items() if v}
    if skipped:
        log.warning(f'{dataset.name}: {skipped} of {len(dataset)} samples could not be read and are not in the '
                    f'metrics')
    summary = dataset.summarize(samples) if hasattr(dataset, 'summarize') else acc.summary()
    return EvalResult(name or dataset.name, summary, groups, samples, getattr(dataset, 'protocol', ''), skipped)


@torch.no_grad()
def mean_mesh_reference(cfg, test_set):
    """{metric: mean} of one constant prediction, the mean of the training split's GT meshes (each relative to its
    SMPL pelvis, camera frame), on test_set: what a model scores that learnt nothing from its inputs. Needs records
    with SMPL fits (the 3DPW-layout sets)."""
    from data.dataset import get_dataset_class
    train = get_dataset_class(test_set.name)(cfg, 'train')
    fitted = [r for r in train.records if r.person is not None]
    if not fitted or not all(r.person is not None for r in test_set.records):
        return None
    total = 0.0
    for rec in fitted:
        verts, joints = train.smpl_mesh(*train.camera_frame_smpl(rec.person), rec.person.gender)
        total = total + verts - joints[0]
    mean = torch.as_tensor(total / len(fitted), dtype=torch.float32)
    acc = MetricAccumulator()
    for rec in test_set.records:
        gt, _ = test_set.smpl_mesh(rec.person.pose, rec.person.shape, rec.person.trans, rec.person.gender)
        acc.add(test_set.evaluate({'mesh_cam': mean[None]}, {'mesh_cam': torch.as_tensor(gt, dtype=torch.float32)[None]}))
    return acc.summary()
