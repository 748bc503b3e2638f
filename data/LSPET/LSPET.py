"""LSPET (LSP Extended, 10000 images): PCKh@0.6 of the projected mesh joints, as LSP (the head segment as head size);
SEFD ships a test file for it but reports no number. Files: data/LSPET/joints.mat ([14,3,10000]) and
data/LSPET/images/im00001.jpg ... (data/formats/lsp_joints.py).
"""
from common.body.joint_sets import LSP14
from data.dataset import BaseDataset
from data.formats.keypoint_benchmark import KeypointBenchmark
from data.formats.lsp_joints import benchmark_people, read_joints_mat
from data.registry import DATASETS
from data.scenes import check_split

LAYOUT = 'data/LSPET/joints.mat ([14,3,10000]) and data/LSPET/images/im00001.jpg ... im10000.jpg'
SPLITS = ('test',)


@DATASETS.register()
class LSPET(KeypointBenchmark, BaseDataset):
    name = 'LSPET'
    is_3d = False
    keypoint_set = LSP14
    metric = 'pckh'

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        joints = read_joints_mat(self.root / 'joints.mat', LAYOUT)
        names = [f'im{i:05d}.jpg' for i in range(1, 1 + len(joints))]
        return self.benchmark_records(benchmark_people(self.root, names, joints, self.name))
