"""The quickstart's figures: the montage of the most occluded test crops, the training curves, the error by occlusion
level (each from a run folder's experiments and result files)."""
import numpy as np

from tool.runs.report import METRIC_NAMES, NAMES, REPORT_ORDER, TRAIN_ORDER, exp_config, mean_std


def hard_samples(dataset, k, ann_ids):
    """Indices of the k test records with the highest recorded occlusion (most people when none is recorded)."""
    recs = [(i, r) for i, r in enumerate(dataset.records) if r.ann_id in ann_ids]
    occ = np.asarray([r.occlusion for _, r in recs], float)
    people = np.asarray([len(r.scene.people) if r.scene else 1 for _, r in recs], float)
    key = np.where(np.isfinite(occ), occ, -1.0) * 100 + people
    order = np.argsort(-key, kind='stable')
    return [recs[j][0] for j in order[:k]]


def draw_montage(qs, npz, path):
    import torch

    from common import vis
    from common.body.smpl import body_model
    from common.camera import Camera
    from common.edges.base import build_edge
    from data.dataset import get_dataset_class
    tcfg, _ = exp_config(qs, 'teacher')
    scfg, _ = exp_config(qs, 'student')
    tcfg.data.num_workers = 0
    dataset = get_dataset_class(tcfg.data.test_set)(tcfg, 'test')  # crops + the teacher's overlap edge
    preds = {m: np.load(npz[m][0]) for m in REPORT_ORDER}
    common_ids = set.intersection(*(set(int(a) for a in p['ann_id']) for p in preds.values()))
    idx = hard_samples(dataset, int(qs.preset['report'].get('crops', 4)), common_ids)
    body = body_model(tcfg.model)
    edge = build_edge(scfg.edge)
    S = tcfg.model.input_size
    rows, titles = [], []
    for i in idx:
        rec = dataset.records[i]
        inputs, targets, meta = dataset.get_sample(rec, np.random.default_rng(0))
        crop = vis.to_uint8_image(inputs['img'])
        canny = edge(inputs['img'][None])[0]
        row = [crop, vis.edge_image(canny), vis.edge_image(inputs['edge'])]
        for m in REPORT_ORDER:
            p = preds[m]
            j = int(np.nonzero(p['ann_id'] == rec.ann_id)[0][0])
            with torch.no_grad():
                verts, _ = body(*(torch.as_tensor(p[k][j:j + 1], dtype=torch.float32)
                                  for k in ('pose', 'shape', 'cam_trans')))
            row.append(vis.render_meshes(crop, [verts[0]], body.faces, Camera(S, S, tcfg.model.focal, (S / 2, S / 2)),
                                         colors=[vis.PALETTE[REPORT_ORDER.index(m)]])[0])
        # the GT mesh, from the image camera into the crop's
        a = meta['img2bb_trans'].numpy()
        f, c = np.asarray(rec.person.focal, float), np.asarray(rec.person.princpt, float)
        focal = (f[0] * a[0, 0], f[1] * a[1, 1])
        princpt = tuple(a[:, :2] @ c + a[:, 2])
        row.append(vis.render_meshes(crop, [targets['mesh_cam']], body.faces, Camera(S, S, focal, princpt),
                                     colors=[(200, 200, 200)])[0])
        rows.append(row)
        occ = f'{rec.occlusion:.0%}' if np.isfinite(rec.occlusion) else 'n/a'
        titles.append(f'ann {rec.ann_id}\nhidden {occ}\n{len(rec.scene.people) if rec.scene else 1} people')
    cols = ['image', 'Canny\n(student input)', 'SMPL overlap\n(teacher input)', *(NAMES[m] for m in REPORT_ORDER),
            'ground truth']
    img = vis.montage(rows, cols, titles, tile=int(qs.preset['report'].get('tile', 128)),
                      title=f'{len(rows)} most occluded test crops (seed 0 models)')
    vis.save_image(path, img)
    return [dataset.records[i].ann_id for i in idx]


def read_scalars(tb_dir):
    """{tag: (steps, values)} of a TensorBoard folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tb_dir), size_guidance={'scalars': 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get('scalars', []):
        ev = acc.Scalars(tag)
        out[tag] = (np.asarray([e.step for e in ev]), np.asarray([e.value for e in ev]))
    return out


def draw_curves(qs, path):
    from tool.runs import charts
    from main.model import TASK_TERMS
    task, distill, val = {}, {}, {}
    t_exp = qs.find_exp(qs.stage_dir('teacher', 0))
    t_steps = int(max(read_scalars(t_exp / 'tb').get('train/total', ([0], None))[0], default=0))
    for m in TRAIN_ORDER:
        exp = qs.find_exp(qs.stage_dir(m, 0))
        sc = read_scalars(exp / 'tb')
        shift = t_steps if m in ('student', 'edge_only') else 0
        terms = [sc[f'train/{t}'] for t in TASK_TERMS if f'train/{t}' in sc]
        if terms:
            steps = terms[0][0]
            task[NAMES[m]] = (steps + shift, np.sum([v for _, v in terms if len(v) == len(steps)], axis=0))
        dterms = [v for k, v in sc.items() if k.startswith('train/distill_')]
        if dterms:
            distill[NAMES[m]] = (dterms[0][0] + shift, np.sum([v for _, v in dterms], axis=0))
        if 'val/pa_mpjpe' in sc:
            val[NAMES[m]] = (sc['val/pa_mpjpe'][0] + shift, sc['val/pa_mpjpe'][1])
    colors = {NAMES[m]: REPORT_ORDER.index(m) for m in REPORT_ORDER}
    panels = {'task loss (sum of the 3DCrowdNet terms)': task, 'distillation loss': distill,
              'validation PA-MPJPE (mm)': val}
    charts.plot_curves(panels, path, xlabel='iteration (students: counted after the teacher\'s)', colors=colors,
                    title='training curves (seed 0)')


def draw_occlusion(rows, path, seeds):
    from tool.runs import charts
    sel = [(label, n, per_model) for label, n, per_model in rows if label == 'all' or label.startswith('occlusion')]
    groups = [f'{label.replace("occlusion ", "hidden ")}\n({n} people)' for label, n, _ in sel]
    panels = {}
    for k in ('mpjpe', 'pa_mpjpe'):
        panels[f'{METRIC_NAMES[k]} (mm)'] = {
            NAMES[m]: ([mean_std(pm[m][k])[0] for _, _, pm in sel],
                       [mean_std(pm[m][k])[1] for _, _, pm in sel] if seeds > 1 else None)
            for m in REPORT_ORDER}
    colors = {NAMES[m]: REPORT_ORDER.index(m) for m in REPORT_ORDER}
    charts.grouped_bar_chart(groups, None, path, panels=panels, colors=colors,
                          title='error by occlusion level (fraction of the person hidden by others)')


def draw_figures(qs, npz, rows):
    """montage.png, curves.png and occlusion.png in the run folder; returns the montage's annotation ids."""
    ann_ids = draw_montage(qs, npz, qs.run_dir / 'montage.png')
    draw_curves(qs, qs.run_dir / 'curves.png')
    draw_occlusion(rows, qs.run_dir / 'occlusion.png', len(qs.seeds))
    return ann_ids
