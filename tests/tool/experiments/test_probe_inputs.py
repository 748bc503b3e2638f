"""tool/experiments/probe_inputs.py on models whose dependence on their inputs is known by construction."""
import numpy as np
import pytest
import torch
import torch.nn as nn

import tests.fixtures as fixtures
from common.metrics import MetricAccumulator
from data.dataset import get_dataset_class
from main.config import load_config
from tool.experiments import probe_inputs


class Reads(nn.Module):
    """A model whose mesh is the template scaled by one number read from one input: 'pose' (the input joints),
    'image' (the crop's mean) or 'edge' (the edge map's mean; a teacher-like model)."""

    def __init__(self, cfg, template, reads):
        super().__init__()
        self.cfg, self.reads = cfg, reads
        self.register_buffer('template', template)
        self.rotation_net = nn.Module()

    def edge_channel(self, inputs):
        return inputs['edge']

    def forward(self, inputs, mode='test'):
        img = inputs['img']
        if self.reads == 'pose':
            s = 0.8 + inputs['joints'][:, :, :2].mean((1, 2)) / self.cfg.model.input_size
        elif self.reads == 'image':
            s = 1.0 + 10 * (img.mean((1, 2, 3)) - 0.5)
        else:
            s = 1.0 + 3 * self.edge_channel(inputs).mean((1, 2, 3))
        b = img.shape[0]
        return {'mesh_cam': self.template[None] * s[:, None, None], 'pose': torch.zeros(b, 72),
                'shape': torch.zeros(b, 10), 'cam_trans': torch.zeros(b, 3)}


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    fixtures.write_pw3d(root / 'PW3D', num_images=3, people=3)
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'data.root={root}', 'model.input_size=64', 'test.batch_size=4',
                                                   f'model.procedural_vertices={fixtures.VERTICES}'])
    ds = get_dataset_class('PW3D')(cfg, 'test')
    body = ds.body()
    verts, joints = body(torch.zeros(1, 72), torch.zeros(1, 10), torch.zeros(1, 3))
    template = (verts - joints[:, :1])[0].float()
    return cfg, ds, template


def constant_mesh_metrics(ds, mesh):
    """The metrics of one constant mesh on every test person, computed without the probe."""
    acc = MetricAccumulator()
    for i in range(len(ds)):
        _, targets, _ = ds[i]
        acc.add(ds.evaluate({'mesh_cam': mesh[None]}, {'mesh_cam': torch.as_tensor(targets['mesh_cam'])[None]}))
    return acc.summary()


def test_a_model_that_reads_only_the_pose_does_not_move(setup):
    cfg, ds, template = setup
    report = probe_inputs.probe(Reads(cfg, template, 'pose'), ds, cfg, torch.device('cpu'))
    v = report['variants']
    assert set(v) == {'given', 'image_swapped', 'grey'} and report['gate'] is None
    for name in ('image_swapped', 'grey'):
        assert v[name]['summary'] == v['given']['summary'] and v[name]['mpjpe_moved_per_person'] == 0
        assert v[name]['count'] == len(ds)


def test_a_model_that_reads_only_the_image_moves(setup):
    cfg, ds, template = setup
    report = probe_inputs.probe(Reads(cfg, template, 'image'), ds, cfg, torch.device('cpu'))
    v = report['variants']
    # grey: every mesh is the template exactly
    want = constant_mesh_metrics(ds, template)
    for k in ('mpjpe', 'pa_mpjpe', 'mpvpe'):
        assert v['grey']['summary'][k] == pytest.approx(want[k], rel=1e-4)
    assert v['image_swapped']['mpjpe_moved_per_person'] > 0.05 * v['given']['summary']['mpjpe']


def test_edge_variants_and_the_swap(setup):
    cfg, ds, template = setup
    cfg = load_config('assets/yaml/tiny_cpu.yml', [f'data.root={cfg.data.root}', 'model.input_size=64',
                                                   'test.batch_size=4', 'mode=teacher', 'edge.type=smpl_overlap',
                                                   f'model.procedural_vertices={fixtures.VERTICES}'])
    model = Reads(cfg, template, 'edge')
    variants = probe_inputs.alterations(model)
    assert set(variants) == {'given', 'image_swapped', 'grey', 'edge_zero', 'edge_swapped'}
    img = torch.rand(4, 3, 8, 8)
    edge = torch.rand(4, 1, 8, 8)
    joints = torch.rand(4, 30, 3)
    inputs = {'img': img, 'edge': edge, 'joints': joints}
    out = variants['edge_swapped'](inputs)
    # each person gets the edge of the one half a batch away; image and pose stay
    assert torch.equal(out['edge'], edge[[2, 3, 0, 1]]) and out['img'] is img and out['joints'] is joints
    out = variants['image_swapped'](inputs)
    assert torch.equal(out['img'], img[[2, 3, 0, 1]]) and torch.equal(out['edge'], edge[[2, 3, 0, 1]])
    # a batch of one gets the previous batch's first person
    out = variants['image_swapped']({'img': img[:1], 'edge': edge[:1], 'joints': joints[:1]})
    assert torch.equal(out['img'], img[:1])
    assert variants['edge_zero'](inputs)['edge'].abs().sum() == 0
    grey = variants['grey'](inputs)
    assert torch.all(grey['img'] == 0.5) and grey['edge'].abs().sum() == 0
    # zeroing the edge of a model that reads only the edge gives the template mesh, exactly as computed alone
    ds = get_dataset_class('PW3D')(cfg, 'test')   # the teacher's loader renders each person's overlap edge
    report = probe_inputs.probe(model, ds, cfg, torch.device('cpu'))
    want = constant_mesh_metrics(ds, template)
    assert report['variants']['edge_zero']['summary']['mpvpe'] == pytest.approx(want['mpvpe'], rel=1e-4)
    rows = probe_inputs.table_rows(report)
    assert len(rows) == 5 and rows[0][0].startswith('as given')
    assert np.isfinite(report['variants']['edge_swapped']['summary']['mpjpe'])
