"""Random bodies from the body model on noise images: a dataset that needs no files, to smoke-test the
training loop and to benchmark it (`data.train_sets_3d=[BodySamples]`). It teaches nothing about images."""
from torch.utils.data import Dataset

from common.body.body_samples import make_batch
from common.body.smpl import body_model
from data.registry import DATASETS


@DATASETS.register()
class BodySamples(Dataset):
    def __init__(self, cfg, split='train', length=64):
        self.cfg, self.length = cfg, length
        self.seed = {'train': 0, 'validation': 1, 'test': 2}[split] * 1_000_000

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        mc = self.cfg.model
        body = body_model(mc)
        batch = make_batch(body, 1, mc.input_size, mc.focal, mc.camera_3d_size, mc.bbox_3d_size,
                           self.cfg.in_channels, seed=self.seed + i)
        return tuple({k: v[0] for k, v in part.items()} for part in batch)
