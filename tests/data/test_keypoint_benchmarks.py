"""The keypoint benchmarks of SEFD's Table 5 (OCHuman, CrowdPose test: AP; LSP, LSPET: PCKh@0.6) on fixtures in the
published formats: samples, the inputs a detector gives, the crop -> image mapping of the predictions, the
evaluators end to end, and bad files."""
import json

import numpy as np
import pytest
import torch

from common.body.joint_sets import COCO17, CROWDPOSE14, LSP14, SMPL30
from common.errors import UserError
from common.pipeline import preprocessing as pre
from data.dataset import get_dataset_class
from main.config import load_config
from tests import fixtures

S = 64


def make(name, root, split='test'):
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'data.root={root}', f'model.input_size={S}',
                                                   f'model.procedural_vertices={fixtures.VERTICES}'])
    return get_dataset_class(name)(cfg, split)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp('bench')
    fixtures.write_ochuman(r / 'OCHuman')
    fixtures.write_crowdpose_test(r / 'CrowdPose')
    return r


def perfect_out(ds, i):
    """What a model predicting the GT keypoints exactly would output for sample i (its joint_proj on the grid)."""
    rec = ds.records[i]
    _, meta = ds.test_inputs(rec, ds.input_pose(rec.joints_2d), pre.INPUT_CONF_THR)
    crop = pre.transform_joints_2d(rec.joints_2d[:, :2], meta['img2bb_trans'].numpy())
    proj = np.zeros((len(SMPL30), 2), np.float32)
    idx = [SMPL30.index(n) for n in ds.keypoint_set.joints]
    proj[idx] = crop * (ds.hm / ds.size)
    return {'joint_proj': torch.from_numpy(proj)[None]}, {'bb2img_trans': meta['bb2img_trans'][None]}


@pytest.mark.parametrize('name,kset', [('OCHuman', COCO17), ('CrowdPose', CROWDPOSE14)])
def test_samples_and_inputs_are_what_a_detector_gives(name, kset, root):
    ds = make(name, root)
    assert len(ds) == 6    # 2 images x 3 people, each annotated person a sample (no detection file)
    inputs, targets, meta = ds[0]
    assert inputs['img'].shape == (3, S, S) and targets['keypoints'].shape == (len(kset), 3)
    given = {SMPL30.joints[j] for j in np.flatnonzero(inputs['joints_mask'][:, 0].numpy() > 0)}
    assert given and given <= set(COCO17.joints) | {'Neck', 'Pelvis'}   # no head top, no SMPL-only joint
    assert 'ground truth' in ds.protocol.lower() or 'gt keypoints' in ds.protocol.lower()


@pytest.mark.parametrize('name', ['OCHuman', 'CrowdPose'])
def test_perfect_predictions_map_back_to_the_image_and_score_ap_one(name, root):
    ds = make(name, root)
    kp = [ds.collect(*perfect_out(ds, i))['keypoints_img'][0] for i in range(len(ds))]
    for k, rec in zip(kp, ds.records):   # crop grid -> image px round trip
        np.testing.assert_allclose(k, rec.joints_2d[:, :2], atol=1e-2)
    ids = np.array([r.ann_id for r in ds.records])
    assert ds.summarize({'ann_id': ids, 'keypoints_img': np.stack(kp)}) == \
        pytest.approx({'ap': 1.0, 'ap50': 1.0, 'ap75': 1.0})
    far = np.stack(kp) + 500.0   # every joint hundreds of px off: no match at any OKS threshold
    assert ds.summarize({'ann_id': ids, 'keypoints_img': far})['ap50'] == 0.0


def test_detections_file_gives_the_samples_and_their_scores(root, tmp_path):
    import shutil
    shutil.copytree(root / 'OCHuman', tmp_path / 'OCHuman')
    db = json.loads((tmp_path / 'OCHuman/annotations/ochuman_coco_format_test_range_0.00_1.00.json').read_text())
    dets = [{'image_id': a['image_id'], 'keypoints': a['keypoints'], 'score': 0.5 + 0.1 * n}
            for n, a in enumerate(db['annotations'][:4])]
    (tmp_path / 'OCHuman/data').mkdir()
    (tmp_path / 'OCHuman/data/test_keypoint_detections.json').write_text(json.dumps(dets))
    ds = make('OCHuman', tmp_path)
    assert len(ds) == 4 and 'detections' in ds.protocol
    assert [ds.sample_info[r.ann_id][1] for r in ds.records] == pytest.approx([0.5, 0.6, 0.7, 0.8])
    kp = np.stack([ds.collect(*perfect_out(ds, i))['keypoints_img'][0] for i in range(len(ds))])
    res = ds.summarize({'ann_id': np.array([r.ann_id for r in ds.records]), 'keypoints_img': kp})
    assert 0.5 < res['ap'] < 0.8   # 4 of 6 people found exactly: recall 2/3 caps the AP


def test_evaluation_loop_reports_ap_with_its_protocol(root):
    from main.model import Model
    from main.tester import evaluate
    ds = make('OCHuman', root)
    model = Model(ds.cfg)
    res = evaluate(model, ds, ds.cfg, torch.device('cpu'), progress=False)
    assert set(res.summary) == {'ap', 'ap50', 'ap75'} and all(0 <= v <= 1 for v in res.summary.values())
    assert res.count == 6 and res.samples['keypoints_img'].shape == (6, 17, 2)
    assert 'AP ' in res.line() and 'mm' not in res.line() and res.to_json()['protocol'] == ds.protocol


def test_bad_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match='ochuman_coco_format_test_range_0.00_1.00.json'):
        make('OCHuman', tmp_path)
    f = tmp_path / 'OCHuman/annotations/ochuman_coco_format_test_range_0.00_1.00.json'
    f.parent.mkdir(parents=True)
    f.write_text('[1, 2]')
    with pytest.raises(UserError, match='not a COCO-style file'):
        make('OCHuman', tmp_path)
    with pytest.raises(UserError, match="no split 'train'"):
        make('OCHuman', tmp_path, split='train')


@pytest.mark.parametrize('name,extended', [('LSP', False), ('LSPET', True)])
def test_lsp_files_read_in_their_layouts_and_pckh_by_head_segment(name, extended, tmp_path):
    gt = fixtures.write_lsp(tmp_path / name, extended=extended)
    ds = make(name, tmp_path)
    assert len(ds) == 3
    for rec, k in zip(ds.records, gt):   # layout, order and the occlusion/visibility flag of each file
        np.testing.assert_allclose(rec.joints_2d, k, atol=1e-3)
    assert [r.joints_2d[LSP14.index('L_Wrist'), 2] for r in ds.records] == [1, 0, 1]
    ids = np.array([r.ann_id for r in ds.records])
    head = np.linalg.norm(gt[:, LSP14.index('Head_top'), :2] - gt[:, LSP14.index('Neck'), :2], axis=1)
    shift = lambda f: gt[:, :, :2] + np.array([f, 0.0]) * head[:, None, None]  # noqa: E731
    assert ds.summarize({'ann_id': ids, 'keypoints_img': shift(0.0)}) == {'pckh': 1.0}
    assert ds.summarize({'ann_id': ids, 'keypoints_img': shift(0.5)}) == {'pckh': 1.0}   # within 0.6 head
    assert ds.summarize({'ann_id': ids, 'keypoints_img': shift(0.7)}) == {'pckh': 0.0}
    kp = shift(0.0).copy()
    kp[0, LSP14.index('R_Ankle')] += 1000   # one of the 41 visible joints (14 x 3, minus one unseen wrist) missed
    assert ds.summarize({'ann_id': ids, 'keypoints_img': kp})['pckh'] == pytest.approx(40 / 41)


def test_lsp_bad_joints_file_is_one_line(tmp_path):
    import scipy.io
    (tmp_path / 'LSP').mkdir()
    scipy.io.savemat(str(tmp_path / 'LSP/joints.mat'), {'joints': np.zeros((2, 14, 5))})
    with pytest.raises(UserError, match=r'LSP/joints.mat: "joints" has shape \[2, 14, 5\]'):
        make('LSP', tmp_path)
    (tmp_path / 'LSP/joints.mat').write_text('not a mat file')
    with pytest.raises(UserError, match='not a joints.mat'):
        make('LSP', tmp_path)


@pytest.mark.slow
def test_paper_tables_runs_the_stand_ins_and_names_what_is_missing(tmp_path):
    """A fresh machine: no benchmark present, so the synthetic set stands in for the 3DPW, OCHuman and LSP rows (one
    test each, marked as stand-ins), and every other row names the file that would make it present."""
    from main.checkpoint import save_checkpoint
    from main.model import Model
    from tool.experiments import paper_tables
    syn = tmp_path / 'Synthetic'
    fixtures.write_pw3d(syn, num_images=2, people=1, split='test', image_root=syn / 'imageFiles',
                        sequence='synth_test_00')   # one person each: the LSP stand-in takes those
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'model.input_size={S}', f'model.procedural_vertices={fixtures.VERTICES}',
                                                   'data.num_workers=0'])
    ckpt = save_checkpoint(tmp_path / 'exp' / 'checkpoint' / 'snapshot_0.pth.tar',
                           {'model': Model(cfg).state_dict(), 'config': cfg.to_dict(), 'epoch': 0})
    paper_tables.main(['--ckpt', str(ckpt), '--data', str(tmp_path / 'none'), '--synthetic', str(syn),
                          '--out', str(tmp_path / 'table')])
    rows = {r['row']: r for r in json.loads((tmp_path / 'table.json').read_text())['rows']}
    for row in ('3DPW', '3DPW-OCC', 'OCHuman', 'LSP'):
        assert rows[row]['status'].endswith('synthetic stand-in') and rows[row]['count'] > 0, rows[row]
    assert rows['3DPW']['ours'] == rows['3DPW-PC']['ours'] and rows['3DPW']['ours']['mpjpe'] > 0
    assert 0 <= rows['OCHuman']['ours']['ap'] <= 1 and 0 <= rows['LSP']['ours']['pckh'] <= 1
    assert rows['CrowdPose']['status'] == f'not present: {tmp_path / "none/CrowdPose/annotations/crowdpose_test.json"}'
    assert 'ours' not in rows['CrowdPose'] and rows['RH-dataset']['status'].startswith('format unknown')
    md = (tmp_path / 'table.md').read_text()
    assert '| 5 | OCHuman | AP / AP50 / AP75 |' in md and '44.1 / 71.7 / 47.2' in md
    assert not (tmp_path / 'exp' / 'result').exists()   # the stand-ins' results are not the experiment's
