"""The DATASETS registry. A dataset is data/<Name>/<Name>.py, whose class <Name> registers itself; the module is
imported on first use of its name (names() imports every such module)."""
from pathlib import Path

from common.registry import Registry

DATA_DIR = Path(__file__).resolve().parent


def _dataset_modules():
    return [f'{__package__}.{p.name}.{p.name}' for p in sorted(DATA_DIR.iterdir()) if (p / f'{p.name}.py').is_file()]


DATASETS = Registry('dataset', lambda n: f'{__package__}.{n}.{n}' if n.isidentifier() else None, _dataset_modules)
