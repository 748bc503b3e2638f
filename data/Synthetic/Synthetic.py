"""The synthetic crowd set (tool/make_synthetic.py), written in the 3DPW layout and read by the same code."""
from common.registry import DATASETS
from data.PW3D import PW3D

LAYOUT = ('data/Synthetic/data/3DPW_latest_{train,validation,test}.json and data/Synthetic/imageFiles/<sequence>/'
          '*.jpg; make it with: python tool/make_synthetic.py --out data/Synthetic')
SPLITS = PW3D.SPLITS
image_dir = PW3D.image_dir


def read_scenes(root, split):
    return PW3D.read_scenes(root, split, layout=LAYOUT)


@DATASETS.register()
class Synthetic(PW3D.PW3D):
    name = 'Synthetic'
    layout = LAYOUT

    def annotation_splits(self):
        # no named subsets here: the test split is the whole test split
        return (self.split,), lambda seq, frame: True
