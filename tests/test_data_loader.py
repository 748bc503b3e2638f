"""data/loader.py: what a training loader's worker runs with."""
import cv2
import torch

from data.loader import make_loader
from main.config import load_config


class ThreadsSeen(torch.utils.data.Dataset):
    renders = False

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.tensor(cv2.getNumThreads())


def test_a_workers_opencv_runs_on_one_thread():
    cv2.setNumThreads(2)   # as OpenCV starts on a 2-core machine; a worker must not compete with the model's threads
    cfg = load_config(None, ['data.num_workers=1'])
    loader = make_loader(ThreadsSeen(), cfg, 2, torch.device('cpu'), train=True)
    assert [int(x) for b in loader for x in b] == [1, 1, 1, 1]
    assert cv2.getNumThreads() == 2   # the training process keeps its own setting
