"""Training and test loaders, and the data order that makes resume exact.

The data order and every sample's augmentation are functions of (train.seed, epoch, position in the epoch) alone
(EpochSampler + SeededSamples), so a run killed at any moment and continued from its last checkpoint retraces the
same steps as an uninterrupted one.
"""
import contextlib
import math
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from common.errors import UserError
from data.edge_inputs import needs_spawned_workers


ORDER_KEY = 2 ** 32 - 1  # the "position" whose seed draws an epoch's order (never a sample's position)


def sample_seed(seed, epoch, position):
    """The augmentation seed of the sample at `position` of epoch `epoch`'s global order."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1, np.uint64)[0] >> 1)


class EpochSampler(Sampler):
    """This rank's share of epoch e's order (a permutation seeded by (seed, e)), from position `start`.

    Ranks interleave like DistributedSampler (rank r takes global positions r, r+W, ...; the order is padded by
    wrapping so all ranks get as many), so W ranks with batch b see the same samples, with the same
    augmentation, as one process with batch W*b. Yields (dataset index, sample seed) for SeededSamples.
    """

    def __init__(self, n, seed=0, rank=0, world_size=1, shuffle=True):
        if n <= 0:
            raise UserError('the training set is empty')
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world_size, shuffle
        self.num_samples = math.ceil(n / world_size)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch, start=0):
        self.epoch, self.start = epoch, start

    def order(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, ORDER_KEY))
            perm = torch.randperm(self.n, generator=g)
        else:
            perm = torch.arange(self.n)
        total = self.num_samples * self.world
        return torch.cat([perm, perm[:total - self.n]]) if total > self.n else perm

    def __len__(self):
        return max(0, self.num_samples - self.start)

    def __iter__(self):
        perm = self.order().tolist()
        for pos in range(self.start, self.num_samples):
            g = pos * self.world + self.rank
            yield perm[g], sample_seed(self.seed, self.epoch, g)


class SeededSamples(Dataset):
    """dataset[(i, seed)]: sample i with torch, numpy and random seeded by `seed`, so its augmentation does not
    depend on which worker draws it or on what was drawn before (the caller's RNG states are restored)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, item):
        index, seed = item
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            # the CPU generator alone: torch.manual_seed would also reseed (or, before CUDA starts, queue a
            # reseed of) every GPU's generator, which fork_rng(devices=[]) does not restore, at ~0.6 ms a sample
            torch.default_generator.manual_seed(seed)
            np.random.seed(seed % 2 ** 32)
            random.seed(seed)
            try:
                return self.dataset[index]
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)


    def __getitems__(self, items):
        """A batch (DataLoader's batched fetch): the dataset's per-batch work (BaseDataset.batch_fits) done once."""
        batch = getattr(self.dataset, 'batch_fits', None)
        with batch([i for i, _ in items]) if batch is not None else contextlib.nullcontext():
            return [self[item] for item in items]


def collate_present(batch):
    """(the batch of the samples that could be read, why each other one could not): evaluation leaves bad samples
    out; a dataset gives the exception (BadSample) in place of such a sample."""
    kept = [b for b in batch if not (b is None or isinstance(b, Exception))]
    return (default_collate(kept) if kept else None), [str(b or 'unreadable') for b in batch
                                                       if b is None or isinstance(b, Exception)]


def single_threaded_worker(worker_id):
    """A loader worker's OpenCV on one thread: by default it starts a pool as wide as the machine, whose threads
    compete with the training process's compute threads for the same cores. 0 (sequential), not 1: OpenCV 4.14's
    setNumThreads(1) in a process forked while the parent's pool was busy waits forever for the pool's threads,
    which the fork did not copy."""
    import cv2
    cv2.setNumThreads(0)


def make_loader(dataset, cfg, batch_size, device, sampler=None, shuffle=False, train=False, evaluation=False):
    """evaluation: batches are (batch or None, why each sample left out could not be read) (collate_present)."""
    nw = cfg.data.num_workers
    # a renderer cannot be used in a process forked from one that rendered: start such workers fresh
    ctx = 'forkserver' if nw and needs_spawned_workers(cfg) else None
    n = len(sampler) if sampler is not None else len(dataset)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=nw,
                      pin_memory=device.type == 'cuda', drop_last=train and n >= batch_size,
                      persistent_workers=train and nw > 0, multiprocessing_context=ctx,
                      generator=torch.Generator().manual_seed(cfg.train.seed),
                      collate_fn=collate_present if evaluation else None,
                      worker_init_fn=single_threaded_worker if nw > 0 else None)
