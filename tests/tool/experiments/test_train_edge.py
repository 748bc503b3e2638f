"""tool/experiments/train_edge.py on a tiny synthetic set: the F-score rises, the weights are the official format
and load as the student edge (scoring the same), training resumes, bad input is one line. Also the score itself."""
import json

import pytest
import torch

from common.errors import UserError

SIZE = 64


@pytest.fixture(scope='module')
def tiny_set(renderer, tmp_path_factory):
    """8 images (6 train, 2 test) of the synthetic set, small."""
    from tool.make_data import make_synthetic
    out = tmp_path_factory.mktemp('edge_synth')
    assert make_synthetic.main(['--out', str(out), '--num-images', '8', '--width', '192', '--height', '256',
                                '--seq-len', '4', '--workers', '0', '--split', '6,0,2', '--contact-sheet', 'none',
                                '--no-progress', '--seed', '2']) == 0
    return out


def _train(root, out, steps, *extra):
    from tool.experiments import train_edge
    return train_edge.main(['--edge', 'pidinet', '--data', str(root), '--out', str(out), '--size', str(SIZE),
                            '--batch', '4', '--steps', str(steps), '--workers', '0', '--eval-every', '0',
                            '--save-every', '5', '--no-progress', *extra])


@pytest.mark.slow
def test_training_raises_fscore_saves_official_weights_and_resumes(tiny_set, tmp_path, capsys):
    from common.edges.base import build_edge
    from common.edges.training import EdgeScore, tolerance_px
    from main.config import load_config
    from tool.experiments.train_edge import make_test_set
    out = tmp_path / 'w' / 'pidinet.pth'
    assert _train(tiny_set, out, 5) == 0
    report = json.loads(out.with_suffix('.json').read_text())
    assert report['steps'] == 5 and report['test_crops'] > 0
    assert report['after']['ods'] > report['before']['ods'] + 0.1, report
    assert 'F-score (ODS) on the test split' in capsys.readouterr().out

    # hellozhuo/pidinet's format; it loads as the student edge (converted) and scores what was reported
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    assert ckpt['epoch'] == 5 and all(k.startswith('module.') for k in ckpt['state_dict'])
    assert ckpt['state_dict']['module.block1_2.conv1.weight'].shape == (60, 1, 3, 3)   # pixel-difference form
    edge = build_edge(load_config(None, ['mode=student', 'edge.type=pidinet', f'edge.weights={out}']).edge)
    test = make_test_set(tiny_set, SIZE, 0, False)
    score = EdgeScore(tolerance_px(SIZE))
    score.add(edge(test['img'].float() / 255), test['edge'].float() / 255)
    assert abs(score.result()['ods'] - report['after']['ods']) < 2e-3

    # the same command with more steps continues from the saved state
    assert _train(tiny_set, out, 6) == 0
    assert 'resuming pidinet from step 5' in capsys.readouterr().out
    again = json.loads(out.with_suffix('.json').read_text())
    assert again['steps'] == 6 and again['before'] == report['before']
    assert torch.load(out.with_name('pidinet.train_state.pth'), weights_only=False)['step'] == 6


def test_bad_input_is_one_line(tmp_path):
    from tool.experiments import train_edge
    with pytest.raises(UserError, match='multiple of 16'):
        train_edge.main(['--edge', 'see', '--size', '50', '--data', str(tmp_path)])
    with pytest.raises(UserError) as e:
        train_edge.main(['--edge', 'see', '--data', str(tmp_path / 'nothing'), '--no-progress'])
    assert '\n' not in str(e.value) and 'make_synthetic' in str(e.value)


def test_fscore_by_hand():
    """A 1-px line predicted one pixel off: within the 1-px tolerance precision and recall are 1; a spurious
    pixel far away halves nothing but adds one false positive."""
    from common.edges.training import EdgeScore
    gt = torch.zeros(1, 1, 8, 8)
    gt[0, 0, :, 3] = 1
    pred = torch.zeros(1, 1, 8, 8)
    pred[0, 0, :, 4] = 0.9
    s = EdgeScore(radius=1)
    s.add(pred, gt)
    r = s.result()
    assert r['precision'] == pytest.approx(1.0) and r['recall'] == pytest.approx(1.0) and r['ods'] == pytest.approx(1.0)
    pred[0, 0, 0, 0] = 0.95                                  # one false positive, scored above the line
    s = EdgeScore(radius=1)
    s.add(pred, gt)
    r = s.result()                                           # best threshold keeps the line: P = 8/9, R = 1
    assert r['ods'] == pytest.approx(2 * (8 / 9) / (8 / 9 + 1))
    assert r['threshold'] <= 0.9


def test_balanced_bce_by_hand():
    from common.edges.training import balanced_bce
    target = torch.tensor([1.0, 0, 0, 0]).view(1, 1, 2, 2)
    logits = torch.zeros(1, 1, 2, 2)                        # p = 0.5 everywhere: each pixel costs log 2
    # edge pixel weight 3/4, non-edge 1.1 * 1/4; mean over the 4 pixels
    expected = (0.75 + 3 * 1.1 * 0.25) * torch.log(torch.tensor(2.0)) / 4
    assert balanced_bce(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_targets_follow_the_crop(tiny_set, renderer):
    """The crop's mask, rendered directly at crop resolution, matches the full-frame render warped with the
    image's crop affine (the path of file-based edges), also rotated and mirrored; edges lie on the people."""
    import cv2
    import numpy as np

    from common.pipeline import preprocessing as pre
    from data.edge_crops import BOX_SCALE, EdgeCrops
    ds = EdgeCrops(tiny_set, 'test', SIZE, train=False)
    s, p = ds.items[0]
    scene = ds.scenes[s]
    meshes, faces, camera = ds.meshes(s)
    full = renderer.render(meshes, faces, camera, outputs=('person_id',)).person_id >= 0
    img = pre.load_img(ds.image_dir / scene.image)
    bbox = pre.process_bbox(scene.people[p].bbox, scene.width, scene.height, scale=BOX_SCALE, train=False)
    for aug in (pre.AugConfig(scale=1.1, rot=12.0), pre.AugConfig(scale=0.9, rot=-20.0, do_flip=True)):
        patch, img2bb, _ = pre.generate_patch_image(img, bbox, aug.scale, aug.rot, aug.do_flip, (SIZE, SIZE))
        warped = pre.warp_map(full.astype(np.float32), img2bb, (SIZE, SIZE), cv2.INTER_NEAREST, aug.do_flip) > 0.5
        out = ds.crop(0, aug)
        assert torch.allclose(out['img'], torch.from_numpy(pre.image_to_chw(patch)))
        mask = out['mask'][0].numpy() > 0.5
        assert (mask & warped).sum() / (mask | warped).sum() > 0.85
        edge = out['edge']
        near_mask = torch.nn.functional.max_pool2d(out['mask'], 9, 1, 4)     # edges lie on or near the people
        assert edge.sum() > 20 and (edge * near_mask).sum() / edge.sum() > 0.95
