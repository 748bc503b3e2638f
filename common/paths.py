"""The repository root, and paths of configs and command lines resolved against it (so runs work from any cwd)."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path):
    """`path` with ~ expanded; a relative path is taken from the repository root."""
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else ROOT / p


def foreign_clone(script):
    """The root of the clone of this project that holds `script`, when Python imports the project from another one
    (the editable install of bash requirements.sh was made in that other clone); else None."""
    for parent in Path(script).resolve().parents:
        if (parent / 'pyproject.toml').is_file() and (parent / 'common' / 'paths.py').is_file():
            return parent if parent != ROOT else None
    return None  # a console script, or a file outside any clone

