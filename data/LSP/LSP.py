"""LSP (Leeds Sports Pose) test split: PCKh@0.6 of the projected mesh joints (SEFD Table 5: 0.8315 for SEFD, 0.8186
for 3DCrowdNet). Head size: the head segment, neck to head top, of the GT joints (LSP has no head box). Files:
data/LSP/joints.mat and data/LSP/images/im0001.jpg ... (data/formats/lsp_joints.py); the protocol (inputs) is
data/formats/keypoint_benchmark.py's.
"""
from common.body.joint_sets import LSP14
from data.dataset import BaseDataset
from data.formats.keypoint_benchmark import KeypointBenchmark
from data.formats.lsp_joints import benchmark_people, read_joints_mat
from data.registry import DATASETS
from data.scenes import check_split

SPLITS = ('test',)


@DATASETS.register()
class LSP(KeypointBenchmark, BaseDataset):
    name = 'LSP'
    is_3d = False
    keypoint_set = LSP14
    metric = 'pckh'
    layout = 'data/LSP/joints.mat ([3,14,2000]) and data/LSP/images/im0001.jpg ... im2000.jpg'

    def test_images(self, joints):
        """(image names, joints) of the test split: images 1001-2000."""
        joints = joints[1000:2000]
        return [f'im{i:04d}.jpg' for i in range(1001, 1001 + len(joints))], joints

    def load_records(self):
        check_split(self.name, self.split, SPLITS)
        names, joints = self.test_images(read_joints_mat(self.root / 'joints.mat', self.layout))
        return self.benchmark_records(benchmark_people(self.root, names, joints, self.name))
