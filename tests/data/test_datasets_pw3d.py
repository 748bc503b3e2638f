"""PW3D / Synthetic loaders, the 3DPW subsets, the training mixture, bad data, and main/test.py."""
import json

import numpy as np
import pytest
import torch

from common.errors import UserError
from common.pipeline import preprocessing as pre
from data.dataset import MultipleDatasets, get_dataset_class
from main.config import load_config
from tests import fixtures


def cfg_for(root, *extra):
    return load_config('assets/yaml/tiny_cpu.yml', [f'data.root={root}', 'model.input_size=128', *extra])


@pytest.fixture(scope='module')
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    fixtures.write_pw3d(root / 'Synthetic', num_images=2, split='train', image_root=root / 'Synthetic' / 'imageFiles')
    return root


def force_aug(monkeypatch, flip, rot=0.0, scale=1.0):
    monkeypatch.setattr(pre, 'get_aug_config', lambda rng=None, train=True, **k: pre.AugConfig(
        scale, rot, np.ones(3, np.float32), flip))


@pytest.mark.parametrize('flip, rot', [(False, 0.0), (True, 0.0), (True, 25.0), (False, -40.0)])
def test_gt_and_smpl_targets_agree_under_augmentation(synth_root, monkeypatch, flip, rot):
    """GT joints (flipped/rotated as arrays) and SMPL fit targets (flipped pose + translation, rotated root,
    through the body model) come from the same bodies: two independent paths must agree."""
    force_aug(monkeypatch, flip, rot)
    ds = get_dataset_class('Synthetic')(cfg_for(synth_root), 'train')
    for k in range(len(ds)):
        inputs, t, m = ds[k]
        assert inputs['img'].shape == (3, 128, 128) and inputs['joints'].shape == (30, 2)
        assert m['is_valid_fit'].item() == 1 and m['is_3D'].item() == 1
        torch.testing.assert_close(t['orig_joint_cam'], t['fit_joint_cam'], atol=2e-3, rtol=0)  # metres
        vis = m['orig_joint_trunc'][:, 0] > 0
        torch.testing.assert_close(t['orig_joint_img'][vis], t['fit_joint_img'][vis], atol=0.1, rtol=0)  # grid px


def test_flip_swaps_left_and_right(synth_root, monkeypatch):
    from common.body.joint_sets import SMPL30
    ds = get_dataset_class('Synthetic')(cfg_for(synth_root), 'train')
    force_aug(monkeypatch, False)
    _, plain, _ = ds[0]
    force_aug(monkeypatch, True)
    _, flipped, _ = ds[0]
    G = 32  # grid of a 128 px crop
    perm = SMPL30.flip_permutation()
    # mirror about the crop: x -> S-1-x crop px = G - G/S - x grid px; the box-centre rule of the reference
    # (cx -> W-1-cx) shifts the flipped crop by one more crop px (G/S): G - x in all
    mirrored_x = G - plain['orig_joint_img'][perm, 0]
    torch.testing.assert_close(flipped['orig_joint_img'][:, 0], mirrored_x, atol=0.02, rtol=0)
    torch.testing.assert_close(flipped['orig_joint_img'][:, 1], plain['orig_joint_img'][perm, 1], atol=0.05, rtol=0)


def test_pw3d_test_samples_and_mesh(tmp_path):
    db = fixtures.write_pw3d(tmp_path / 'PW3D', num_images=2)
    ds = get_dataset_class('PW3D')(cfg_for(tmp_path), 'test')
    assert len(ds) == len(db['annotations'])
    inputs, targets, meta = ds[0]
    assert inputs['joints'].shape == (30, 3) and inputs['joints_mask'].shape == (30, 1)
    ann = db['annotations'][0]
    p = ann['smpl_param']
    body = fixtures.body()
    v, _ = body(torch.tensor([p['pose']]), torch.tensor([p['shape']]), torch.tensor([p['trans']]))
    torch.testing.assert_close(targets['mesh_cam'], v[0], atol=1e-5, rtol=0)
    # the crop box comes from the detected pose (3DCrowdNet protocol), not from the GT box
    op = np.asarray(ann['openpose_result'])
    box = pre.process_bbox(pre.get_bbox(op[:, :2], op[:, 2] > 0.05), 320, 240, train=False)
    np.testing.assert_allclose(meta['bbox'].numpy(), box, atol=1e-4)
    assert meta['ann_id'].item() == ann['id']


def test_3dpw_subsets_select_their_sequences_and_frames(tmp_path):
    root = tmp_path / 'PW3D'
    # (split, sequence, frame numbers): which are in crowd / oc / pc
    layout = [('validation', 'courtyard_hug_00', [99, 100, 499, 500]), ('validation', 'courtyard_golf_00', [1]),
              ('test', 'downtown_bus_00', [1619, 1620, 1899, 1900]), ('train', 'outdoors_fencing_01', [3]),
              ('test', 'flat_guitar_01', [7])]
    dbs = {}
    for split, seq, frames in layout:
        db = fixtures.write_pw3d(root, num_images=len(frames), people=1, split=split, sequence=seq, images=False)
        for img, fr in zip(db['images'], frames):
            img['file_name'] = f'image_{fr:05d}.jpg'
        prev = dbs.setdefault(split, {'images': [], 'annotations': [], 'categories': db['categories']})
        off = 1000 * len(prev['images'])
        for img in db['images']:
            img['id'] += off
        for a in db['annotations']:
            a['id'] += off
            a['image_id'] += off
        prev['images'] += db['images']
        prev['annotations'] += db['annotations']
    for split, db in dbs.items():
        (root / 'data' / f'3DPW_latest_{split}.json').write_text(json.dumps(db))

    def names(subset):
        ds = get_dataset_class('PW3D')(cfg_for(tmp_path, f'test.subset={subset}'), 'test')
        return sorted((r.img_path.parent.name, int(r.img_path.stem[-5:])) for r in ds.records)
    assert names('crowd') == [('courtyard_hug_00', f) for f in (99, 100, 499, 500)]
    assert names('oc') == [('courtyard_golf_00', 1), ('flat_guitar_01', 7), ('outdoors_fencing_01', 3)]
    assert names('occ') == [('flat_guitar_01', 7)]   # VisDB's: the occluded sequences of the test split
    assert names('pc') == [('courtyard_hug_00', 100), ('courtyard_hug_00', 499),
                           ('downtown_bus_00', 1620), ('downtown_bus_00', 1899)]
    assert [n for n, _ in names('')] == ['downtown_bus_00'] * 4 + ['flat_guitar_01']
    with pytest.raises(UserError, match="did you mean 'crowd'"):
        names('crwd')


def test_mixture_is_half_and_half():
    class Fake(torch.utils.data.Dataset):
        def __init__(self, tag, n):
            self.tag, self.n = tag, n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            assert 0 <= i < self.n
            return self.tag
    mix = MultipleDatasets([Fake('3d', 3), Fake('2d', 7)])
    assert len(mix) == 14
    drawn = [mix[i] for i in torch.randperm(len(mix)).tolist()]
    assert drawn.count('3d') == drawn.count('2d') == 7


def test_missing_annotation_names_path_layout_and_fix(tmp_path):
    with pytest.raises(UserError, match=r'3DPW_latest_test.json.*make_synthetic'):
        get_dataset_class('PW3D')(cfg_for(tmp_path), 'test')


def test_bad_images_are_skipped_and_counted_or_stop(tmp_path, synth_root):
    import shutil
    shutil.copytree(synth_root / 'Synthetic', tmp_path / 'Synthetic')
    jpgs = sorted((tmp_path / 'Synthetic' / 'imageFiles').rglob('*.jpg'))
    jpgs[0].write_bytes(b'not a jpeg')
    ds = get_dataset_class('Synthetic')(cfg_for(tmp_path), 'train')
    samples = [ds[i] for i in range(len(ds))]
    bad_recs = sum(r.img_path == jpgs[0] for r in ds.records)
    assert len(samples) == len(ds) and len(ds.bad) == bad_recs > 0
    told = []
    for n in range(1, 1001):   # the running total keeps being told: each of the first 5, then at 10, 100, 1000
        ds.bad = set(range(n))
        told += [n] if ds.tell_bad() else []
    assert told == [1, 2, 3, 4, 5, 10, 100, 1000]
    ds = get_dataset_class('Synthetic')(cfg_for(tmp_path, 'data.on_bad_sample=error'), 'train')
    bad_index = next(i for i, r in enumerate(ds.records) if r.img_path == jpgs[0])
    with pytest.raises(UserError, match='image_00000.jpg'):
        ds[bad_index]


def test_evaluation_leaves_bad_samples_out_and_counts_them(tmp_path):
    """Testing never replaces an unreadable sample by another one (each person is counted once), and the result
    says how many were left out."""
    from main.model import Model
    from main.tester import evaluate
    fixtures.write_pw3d(tmp_path / 'PW3D', num_images=4, people=2, split='test')
    jpgs = sorted((tmp_path / 'PW3D').rglob('*.jpg'))
    jpgs[1].write_bytes(b'not a jpeg')
    jpgs[2].unlink()
    cfg = cfg_for(tmp_path, 'model.input_size=64', f'model.procedural_vertices={fixtures.VERTICES}',
                  'data.num_workers=0', 'test.batch_size=3')
    ds = get_dataset_class('PW3D')(cfg, 'test')
    res = evaluate(Model(cfg), ds, cfg, torch.device('cpu'), progress=False)
    good = [r.ann_id for r in ds.records if r.img_path not in jpgs[1:3]]
    assert sorted(res.samples['ann_id'].tolist()) == sorted(good) and len(good) == 4
    assert res.skipped == 4 and res.to_json()['skipped'] == 4 and '4 unreadable left out' in res.line()


def test_overlap_edge_rendered_per_crop_matches_the_file(tmp_path, synth_root, monkeypatch):
    """On-the-fly crop edges agree with tool/make_data/make_overlap_edges.py's full-frame file warped by the crop."""
    import shutil
    from tool.make_data import make_overlap_edges
    shutil.copytree(synth_root / 'Synthetic', tmp_path / 'Synthetic')
    make_overlap_edges.main(['--dataset', 'Synthetic', '--root', str(tmp_path / 'Synthetic'), '--split', 'train',
                             '--vertices', str(fixtures.VERTICES)])
    for flip in (False, True):
        force_aug(monkeypatch, flip, rot=15.0, scale=1.1)
        maps = {}
        for src in ('render', 'file'):
            ds = get_dataset_class('Synthetic')(cfg_for(tmp_path, 'mode=teacher', 'edge.type=smpl_overlap',
                                                       f'edge.overlap_source={src}'), 'train')
            maps[src] = ds[1][0]['edge'][0].numpy()
        r, f = maps['render'] > 0.5, maps['file'] > 0.5
        assert r.sum() > 50 and f.sum() > 50
        # most edge pixels of one lie within 2 px of the other's (resolution and dilation differ)
        import cv2
        near = lambda a: cv2.dilate(a.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # noqa: E731
        assert (r & near(f)).sum() / r.sum() > 0.8 and (f & near(r)).sum() / f.sum() > 0.8


def test_test_script_end_to_end(tmp_path):
    from main import test as test_script
    from main.checkpoint import save_checkpoint
    from main.model import Model
    fixtures.write_pw3d(tmp_path / 'PW3D', num_images=2)
    cfg = cfg_for(tmp_path, f'output_dir={tmp_path}')
    model = Model(cfg)
    exp = tmp_path / 'exp'
    save_checkpoint(exp / 'checkpoint' / 'snapshot_3.pth.tar', {'epoch': 3, 'model': model.state_dict(),
                                                                'config': cfg.to_dict()})
    result = test_script.main(['--exp_dir', str(exp), '--test_epoch', '3'])
    summary = result.summary
    assert set(summary) == {'mpjpe', 'pa_mpjpe', 'mpvpe'} and all(np.isfinite(v) for v in summary.values())
    saved = json.loads((exp / 'result' / 'metrics_PW3D_3.json').read_text())
    assert saved['count'] == 6 and saved['summary'] == pytest.approx(summary)
    # people per image is known on any 3DPW-format set (3 per fixture image); the occlusion level only where
    # the annotations record it (the synthetic set)
    assert saved['groups'] == {'people': {'3': {**summary, 'count': 6}}}
    samples = np.load(exp / 'result' / 'metrics_PW3D_3.npz')
    assert samples['pose'].shape == (6, 72) and samples['shape'].shape == (6, 10) and samples['cam_trans'].shape == (6, 3)
    assert samples['mpjpe'].mean() == pytest.approx(summary['mpjpe'])


@pytest.mark.slow
def test_teacher_trains_with_edges_rendered_in_loader_workers(synth_root, tmp_path):
    """The teacher's 4-channel input, rendered per crop inside a loader worker (workers must not be forked
    from a process that rendered), through the training CLI."""
    import subprocess
    import sys
    from common.paths import ROOT
    r = subprocess.run([sys.executable, 'main/train.py', '--cfg', 'assets/yaml/tiny_cpu.yml', f'data.root={synth_root}',
                        f'output_dir={tmp_path}', 'mode=teacher', 'edge.type=smpl_overlap', 'data.num_workers=1',
                        'train.batch_size=2', 'train.max_iters=2', 'model.input_size=64'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (exp,) = tmp_path.iterdir()
    ckpt = torch.load(exp / 'checkpoint' / 'snapshot_0.pth.tar', map_location='cpu', weights_only=False)
    assert ckpt['model']['backbone.conv1.weight'].shape[1] == 4


def test_bad_annotations_are_skipped_and_counted_alike_by_the_tools_and_training(tmp_path, caplog):
    """One parse of the annotation file (PW3D.read_annotations) feeds both paths: an image with a malformed
    annotation is skipped whole, and named, by the tools' scenes and by the training records alike."""
    import logging
    from data.PW3D import PW3D
    db = fixtures.write_pw3d(tmp_path / 'PW3D', num_images=4, people=2, split='train')
    anns = db['annotations']
    anns[2]['smpl_param']['pose'][5] = float('nan')         # image 1: NaN pose
    del anns[4]['smpl_param']                                # image 2: no SMPL parameters
    anns.append({'id': 99, 'image_id': 77, 'bbox': [0, 0, 10, 10]})   # an image id not in the images list
    anns[6]['bbox'], anns[7]['bbox'] = [10, 10, 0, 0], [10, 10, -5, 20]   # image 3: zero-area and negative boxes
    fixtures._dump(tmp_path / 'PW3D' / 'data' / '3DPW_latest_train.json', db)

    scenes, problems = PW3D.read_scenes(tmp_path / 'PW3D', 'train')
    assert sorted(s.image for s in scenes) == ['courtyard_hug_00/image_00000.jpg', 'courtyard_hug_00/image_00003.jpg']
    assert len(problems) == 3
    with caplog.at_level(logging.WARNING, logger='sefd'):
        ds = get_dataset_class('PW3D')(cfg_for(tmp_path), 'train')
    # the same images; image 3's two people have no usable box, so they are in its scene but are no samples
    assert sorted(r.image_rel for r in ds.records) == ['courtyard_hug_00/image_00000.jpg'] * 2
    assert any('skipped 3 bad annotation(s)' in r.getMessage() for r in caplog.records)
    ds[0]   # and a sample of what is left trains


@pytest.mark.parametrize('field, value', [('file_name', '../../../../../OUTSIDE/secret.jpg'),
                                          ('sequence', '/etc'), ('sequence', '..')])
def test_paths_that_leave_the_dataset_folder_are_refused(field, value, tmp_path, caplog):
    """An image path from an annotation stays inside the dataset: one that would leave it (.., absolute)
    is skipped and named by training, testing and the edge tool, which writes nothing for it."""
    import logging
    import subprocess
    import sys
    from common.paths import ROOT
    from data.PW3D import PW3D
    for split in ('train', 'test'):
        db = fixtures.write_pw3d(tmp_path / 'PW3D', num_images=2, people=2, split=split)
        db['images'][1][field] = value
        fixtures._dump(tmp_path / 'PW3D' / 'data' / f'3DPW_latest_{split}.json', db)
        with caplog.at_level(logging.WARNING, logger='sefd'):
            ds = get_dataset_class('PW3D')(cfg_for(tmp_path), split)
        assert {r.image_rel for r in ds.records} == {'courtyard_hug_00/image_00000.jpg'}
        assert any('leaves the dataset folder' in r.getMessage() and value in r.getMessage()
                   for r in caplog.records)
    scenes, problems = PW3D.read_scenes(tmp_path / 'PW3D', 'test')
    assert len(scenes) == 1 and 'leaves the dataset folder' in problems[0]
    r = subprocess.run([sys.executable, 'tool/make_data/make_overlap_edges.py', '--dataset', 'PW3D', '--root',
                        str(tmp_path / 'PW3D'), '--split', 'test'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert 'leaves the dataset folder' in r.stdout + r.stderr
    written = [p for p in tmp_path.rglob('*.png')]
    assert written and all(p.is_relative_to(tmp_path / 'PW3D' / 'overlap_edges') for p in written)
