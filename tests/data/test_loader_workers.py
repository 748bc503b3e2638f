"""data/loader.py: what a training loader's worker runs with."""
import random

import cv2
import numpy as np
import torch

from data.loader import SeededSamples, make_loader
from main.config import load_config


class ThreadsSeen(torch.utils.data.Dataset):
    renders = False

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.tensor(cv2.getNumThreads())


def test_a_workers_opencv_runs_on_one_thread():
    cv2.setNumThreads(2)   # as OpenCV starts on a 2-core machine; a worker must not compete with the model's threads
    for _ in range(3):     # the parent's pool busy before the fork (it hung the workers' setNumThreads(1))
        cv2.GaussianBlur(np.random.rand(1500, 1500).astype(np.float32), (31, 31), 5)
    cfg = load_config(None, ['data.num_workers=1'])
    loader = make_loader(ThreadsSeen(), cfg, 2, torch.device('cpu'), train=True)
    assert [int(x) for b in loader for x in b] == [1, 1, 1, 1]
    assert cv2.getNumThreads() == 2   # the training process keeps its own setting


class Draws(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.randint(2 ** 62, (1,)).item(), float(np.random.rand()), random.random()


def test_a_seeded_sample_reseeds_the_cpu_generators_only_and_restores_them():
    """A sample's draws are a function of its seed, the caller's generators are left as they were, and no GPU
    generator is reseeded (fork_rng(devices=[]) would not undo that; before CUDA starts torch.manual_seed queues the
    reseed with a traceback, the cost of which was ~0.6 ms a sample)."""
    data = SeededSamples(Draws())
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    queued = torch.cuda._lazy_seed_tracker.get_calls()
    state = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    a, b, c = data[(3, 7)], data[(3, 7)], data[(3, 8)]
    assert a == b and a != c
    assert torch.equal(torch.get_rng_state(), state[0]) and (np.random.get_state()[1] == state[1]).all()
    assert random.getstate() == state[2]
    assert torch.cuda._lazy_seed_tracker.get_calls() == queued
    torch.manual_seed(7)   # the seed's draws are the ones torch.manual_seed(seed) would give
    assert a[0] == torch.randint(2 ** 62, (1,)).item()
