"""SEFD's distributed SMPL overlap-edge files, in their published names and folders, are read by
`edge.overlap_source: file` for every dataset layout, and `tool/make_data/make_overlap_edges.py --layout sefd` writes
them.

The expected paths are spelled out from SEFD's loaders and tools, not computed by the code
under test; a missing file is a counted, reported bad sample, never zeros."""
import logging

import cv2
import numpy as np
import pytest

from common.errors import UserError
from data.dataset import get_dataset_class
from main.config import load_config
from tests import fixtures
from tool.make_data import make_overlap_edges

S = 64
TEACHER = ['mode=teacher', 'edge.type=smpl_overlap', 'edge.overlap_source=file']
# dataset -> (fixture writer, split, the SEFD file of the fixture's first image relative to the dataset root)
LAYOUTS = {
    'PW3D': (lambda r: (fixtures.write_pw3d(r, images=False, split='train'),              # 3DCrowdNet layout:
                        (r / 'data' / 'imageFiles').mkdir(parents=True)), 'train',        # data/imageFiles/
             'data/SMPL_overlap_edge2/courtyard_hug_00/image_00000.jpg'),
    'Synthetic': (lambda r: fixtures.write_pw3d(r, images=False, split='train', image_root=r / 'imageFiles'), 'train',
                  'SMPL_overlap_edge2/courtyard_hug_00/image_00000.jpg'),
    'Human36M': (lambda r: fixtures.write_h36m(r, images=False), 'train',
                 'SMPL_edge/s_1_act_2_subact_1_ca_1/SMPL_edge_s_1_act_2_subact_1_ca_1_0.jpg'),
    'MuCo': (lambda r: fixtures.write_muco(r, images=False), 'train',
             'SMPL_overlap_edge/unaugmented_set/000/img_000000.jpg'),
    'MSCOCO': (lambda r: fixtures.write_mscoco(r, images=False), 'train', 'images/SMPL_overlap_edge/000000000000.jpg'),
    'MPII': (lambda r: fixtures.write_mpii(r, images=False), 'train', 'data/SMPL_overlap_edge/000000000000.jpg'),
}
# what SEFD's tools wrote instead of what its loaders read, for the same image
TOOL_NAMES = {
    'PW3D': 'data/SMPL_overlap_edge/courtyard_hug_00/SMPL_overlap_edge_image_00000.jpg',
    'MuCo': 'SMPL_overlap_edge/unaugmented_set/000/SMPL_overlap_edge_img_000000.jpg',
    'MSCOCO': 'images/SMPL_overlap_edge/SMPL_overlap_edge_000000000000.jpg',
    'MPII': 'data/SMPL_overlap_edge/SMPL_overlap_edge_000000000000.jpg',
}


def dataset(root, name, *extra):
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'data.root={root}', f'model.input_size={S}',
                                                   f'model.procedural_vertices={fixtures.VERTICES}', *TEACHER, *extra])
    return get_dataset_class(name)(cfg, LAYOUTS[name][1])


def with_images(ds):
    """Noise images where the records expect them (the edge file, not the pixels, is under test)."""
    rng = np.random.default_rng(0)
    for rec in ds.records:
        rec.img_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(rec.img_path), rng.integers(0, 255, (fixtures.H, fixtures.W, 3), dtype=np.uint8))
    return ds


def write_edge(path, value=255):
    """A full-frame map, bright everywhere, so that any crop of it shows it was read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((fixtures.H, fixtures.W), value, np.uint8))
    return path


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_sefd_files_are_found_for_every_layout(name, tmp_path, caplog):
    root = tmp_path / name
    LAYOUTS[name][0](root)
    ds = with_images(dataset(tmp_path, name))
    first = [i for i, r in enumerate(ds.records) if r.image_rel == ds.records[0].image_rel]
    for r in ds.records[len(first):]:                  # the other images: files in this project's layout
        write_edge(root / 'overlap_edges' / r.image_rel.replace('.jpg', '.png'))
    sefd = write_edge(root / LAYOUTS[name][2])
    edge = ds[first[0]][0]['edge']
    assert edge.shape == (1, S, S) and edge.max() == 1.0 and not ds.bad
    if name in TOOL_NAMES:                             # the name SEFD's tools wrote is found too
        sefd.unlink()
        write_edge(root / TOOL_NAMES[name])
        ds = dataset(tmp_path, name)
        assert ds[first[0]][0]['edge'].max() == 1.0 and not ds.bad
        (root / TOOL_NAMES[name]).unlink()
    else:
        sefd.unlink()
    # no file: the sample is skipped, counted and reported (with the SEFD name looked for), never a zero edge
    ds = dataset(tmp_path, name)
    with caplog.at_level(logging.WARNING, logger='sefd'):
        ds[first[0]]
    assert first[0] in ds.bad and 'missing overlap edge' in caplog.text and 'SMPL_' in caplog.text
    with pytest.raises(UserError, match='make_overlap_edges.py'):
        dataset(tmp_path, name, 'data.on_bad_sample=error')[first[0]]


def test_this_projects_file_is_preferred(tmp_path):
    fixtures.write_mscoco(tmp_path / 'MSCOCO', images=False)
    ds = with_images(dataset(tmp_path, 'MSCOCO'))
    write_edge(tmp_path / 'MSCOCO' / LAYOUTS['MSCOCO'][2], 255)
    ours = tmp_path / 'MSCOCO' / 'overlap_edges' / 'train2017' / '000000000000.png'
    write_edge(ours, 0)
    assert ds[0][0]['edge'].max() == 0.0
    ours.unlink()   # a new run (a dataset keeps the edge files it has decoded: data.image_cache_mb)
    assert with_images(dataset(tmp_path, 'MSCOCO'))[0][0]['edge'].max() == 1.0


@pytest.mark.parametrize('name', ['PW3D', 'Human36M', 'MSCOCO'])
def test_make_overlap_edges_writes_the_sefd_layout(name, tmp_path):
    LAYOUTS[name][0](tmp_path / name)
    ds = with_images(dataset(tmp_path, name))       # 3DPW: the maps go beside imageFiles/, wherever that is
    counts, skipped, problems, failures = make_overlap_edges.main(
        ['--dataset', name, '--root', str(tmp_path / name), '--split', LAYOUTS[name][1], '--layout', 'sefd',
         '--vertices', str(fixtures.VERTICES)])
    assert not problems and not failures and counts['done'] > 0
    written = tmp_path / name / LAYOUTS[name][2]
    img = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
    assert img.shape == (fixtures.H, fixtures.W) and img.dtype == np.uint8
    assert written.read_bytes()[:2] == b'\xff\xd8'                   # a JPEG, as SEFD's files
    assert not (tmp_path / name / 'overlap_edges').exists()
    if name != 'Human36M':                                           # several people hide each other's contours
        assert (img > 127).sum() > 20
    assert ds[0][0]['edge'].shape == (1, S, S) and not ds.bad
    # resumable in that layout too
    assert make_overlap_edges.main(['--dataset', name, '--root', str(tmp_path / name), '--split', LAYOUTS[name][1],
                                    '--layout', 'sefd', '--vertices', str(fixtures.VERTICES)])[1] == counts['done']


def test_sefd_layout_has_no_crowdpose_and_no_all_edges(tmp_path):
    with pytest.raises(UserError, match='CrowdPose'):
        make_overlap_edges.main(['--dataset', 'CrowdPose', '--root', str(tmp_path), '--layout', 'sefd'])
    with pytest.raises(UserError, match='all-edges'):
        make_overlap_edges.main(['--dataset', 'PW3D', '--root', str(tmp_path), '--layout', 'sefd', '--all-edges'])
