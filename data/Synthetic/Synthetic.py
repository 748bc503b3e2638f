"""The synthetic crowd set (tool/make_data/make_synthetic.py), written in the 3DPW layout and read by the same code."""
import numpy as np

from common.pipeline.simulated_detector import DetectorScene, smpl30_to_openpose18
from data.PW3D import PW3D
from data.registry import DATASETS

LAYOUT = ('data/Synthetic/data/3DPW_latest_{train,validation,test}.json and data/Synthetic/imageFiles/<sequence>/'
          '*.jpg; make it with: python tool/make_data/make_synthetic.py --out data/Synthetic')
SPLITS = PW3D.SPLITS
image_dir = PW3D.image_dir


def read_scenes(root, split):
    return PW3D.read_scenes(root, split, layout=LAYOUT)


@DATASETS.register()
class Synthetic(PW3D.PW3D):
    name = 'Synthetic'
    layout = LAYOUT
    exact_fits = True   # rendered from its SMPL parameters

    def annotation_splits(self):
        # no named subsets here: the test split is the whole test split
        return (self.split,), lambda seq, frame: True

    def attach_detector(self, records, anns, people, joints, img):
        """The simulated detector of tool/make_data/make_synthetic.py, replayed on training crops
        (data.input_pose=detector), so that the training input pose has the joints, misses, swaps and noise of the test
        split's recorded detections. A set made before the annotations recorded the detector's input falls back to
        PoseFix."""
        if not all('detector_input' in a for a in anns):
            return
        given = [a['detector_input'] for a in anns]
        scene = DetectorScene(
            uv=np.stack([smpl30_to_openpose18(self.project(j, p)) for j, p in zip(joints, people)]),
            status=np.array([g['status'] for g in given], np.int64),
            occluder=np.array([g['occluder'] for g in given], np.int64),
            scale=np.array([g['scale'] for g in given], np.float64),
            width=int(img['width']), height=int(img['height']), noise=float(given[0].get('noise', 1.0)))
        for i, r in enumerate(records):
            if r is not None:
                r.detector = (scene, i)
