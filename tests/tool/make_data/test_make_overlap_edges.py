"""tool/make_data/make_overlap_edges.py on fixtures of every dataset layout."""
import json

import cv2
import numpy as np
import pytest

from common.errors import UserError
from data.scenes import edge_path
from tests import fixtures
from tool.make_data import make_overlap_edges as tool

WRITERS = {
    'PW3D': lambda r: fixtures.write_pw3d(r, images=False),
    'Synthetic': lambda r: fixtures.write_pw3d(r, images=False, image_root=r / 'imageFiles'),
    'MuCo': lambda r: fixtures.write_muco(r, images=False),
    'Human36M': lambda r: fixtures.write_h36m(r, images=False),
    'MSCOCO': lambda r: fixtures.write_mscoco(r, images=False),
    'MPII': lambda r: fixtures.write_mpii(r, images=False),
    'CrowdPose': lambda r: fixtures.write_crowdpose(r, images=False),
}


def run(name, root, *extra):
    return tool.main(['--dataset', name, '--root', str(root), '--vertices', str(fixtures.VERTICES), *extra])


@pytest.mark.parametrize('name', sorted(WRITERS))
def test_every_layout(name, tmp_path):
    WRITERS[name](tmp_path)
    split = ['--split', 'test'] if name in ('PW3D', 'Synthetic') else ['--split', 'train']
    counts, skipped, problems, failures = run(name, tmp_path, *split)
    assert not problems and not failures
    files = sorted((tmp_path / 'overlap_edges').rglob('*.png'))
    assert counts['done'] == len(files) > 0 and skipped == 0
    for f in files:
        edge = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        assert edge.dtype == np.uint8 and edge.shape == (fixtures.H, fixtures.W)
        if name != 'Human36M':  # one person: nothing hidden
            assert (edge > 0).sum() > 20, f  # overlapping people hide contours
        else:
            assert edge.max() == 0
    # resumable: a second run skips every valid file and redoes a truncated one
    files[0].write_bytes(files[0].read_bytes()[:20])
    counts, skipped, _, _ = run(name, tmp_path, *split)
    assert counts['done'] == 1 and skipped == len(files) - 1


def test_paths_follow_the_image_layout(tmp_path):
    db = fixtures.write_pw3d(tmp_path, images=False)
    run('PW3D', tmp_path, '--split', 'test', '--all-edges')
    img = db['images'][0]
    assert edge_path(tmp_path, f'{img["sequence"]}/{img["file_name"]}') == \
        tmp_path / 'overlap_edges' / img['sequence'] / img['file_name'].replace('.jpg', '.png')
    assert (tmp_path / 'overlap_edges' / img['sequence'] / 'image_00000.png').is_file()
    assert (tmp_path / 'all_edges' / img['sequence'] / 'image_00000.png').is_file()


def test_bad_entries_are_counted_and_the_rest_goes_on(tmp_path, capsys):
    fixtures.write_pw3d(tmp_path, num_images=3, images=False)
    path = tmp_path / 'data' / '3DPW_latest_test.json'
    db = json.loads(path.read_text())
    del db['images'][0]['cam_param']                          # missing camera field
    db['annotations'][-1]['smpl_param']['pose'][5] = float('nan')  # NaN parameters
    path.write_text(json.dumps(db))
    (tmp_path / 'data' / '3DPW_latest_validation.json').write_text('{not json')  # unreadable annotation file
    counts, skipped, problems, failures = run('PW3D', tmp_path)
    assert counts['done'] == 1 and len(problems) == 4  # the fixture has no train split either
    err = capsys.readouterr().err
    assert 'missing camera field' in err and 'NaN' in err and '3DPW_latest_validation.json' in err
    assert 'missing annotation file' in err and 'make_synthetic' in err
    assert all(line.count('\n') == 0 for line in problems)


def test_nothing_made_is_an_error(tmp_path):
    fixtures.write_pw3d(tmp_path, num_images=2, images=False)
    path = tmp_path / 'data' / '3DPW_latest_test.json'
    db = json.loads(path.read_text())
    for img in db['images']:
        del img['cam_param']
    path.write_text(json.dumps(db))
    with pytest.raises(UserError, match='no overlap edge could be made'):
        run('PW3D', tmp_path)
