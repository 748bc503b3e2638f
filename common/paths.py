"""The repository root, and paths of configs and command lines resolved against it (so runs work from any cwd)."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path):
    """`path` with ~ expanded; a relative path is taken from the repository root."""
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else ROOT / p
