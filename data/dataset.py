"""Dataset lookup and the training mixture of 3DCrowdNet: 3D sets and 2D sets drawn 50/50."""
import importlib

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from common.errors import UserError
from common.registry import DATASETS


def get_dataset_class(name):
    """data/<Name>/<Name>.py registers <Name>; import it on first use."""
    if name not in DATASETS:
        try:
            importlib.import_module(f'data.{name}.{name}')
        except ModuleNotFoundError as e:
            if e.name not in (f'data.{name}', f'data.{name}.{name}'):
                raise
    return DATASETS.get(name)


class MultipleDatasets(Dataset):
    """Each member drawn equally often: length = longest member x members; index i reads member
    i // longest. Shorter members wrap around, and the last incomplete pass over one draws at random so
    its first items are not favoured."""

    def __init__(self, datasets):
        self.dbs = [d for d in datasets if len(d) > 0]
        if not self.dbs:
            raise UserError('every training dataset is empty')
        self.max_len = max(len(d) for d in self.dbs)

    def __len__(self):
        return self.max_len * len(self.dbs)

    def __getitem__(self, index):
        db = self.dbs[index // self.max_len]
        j, n = index % self.max_len, len(db)
        if j >= (self.max_len // n) * n:
            j = np.random.randint(n)
        return db[j % n]


def build_train_dataset(cfg):
    groups = []
    for names in (cfg.data.train_sets_3d, cfg.data.train_sets_2d):
        if names:
            dbs = [get_dataset_class(n)(cfg, 'train') for n in names]
            groups.append(dbs[0] if len(dbs) == 1 else ConcatDataset(dbs))
    if not groups:
        raise UserError('no training set: set data.train_sets_3d and/or data.train_sets_2d')
    return groups[0] if len(groups) == 1 else MultipleDatasets(groups)
