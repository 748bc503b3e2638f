"""The resumable state of a multi-stage run (quickstart, ablation): one JSON file of finished stages and what
they produced, rewritten atomically after every change, so an interrupted run continues where it stopped."""
import json
import threading
from pathlib import Path

from common.errors import UserError
from common.io import atomic_write_text


def read_state(path, default=None):
    """A state file's content; `default` (else {}) when it is missing; one line when it is corrupt."""
    if not path.is_file():
        return {} if default is None else default
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f'{path} is not valid JSON; delete it (finished experiment folders are found again) or '
                        f'start over') from e
    if not isinstance(data, dict):
        raise UserError(f'{path} is not a run state (a JSON object); delete it or start over')
    return data


def check_run_folder(folder, state_name, what):
    """Before a multi-stage job writes into (or, with --fresh, deletes in) a folder the user named: it must be new,
    empty, or a folder of that job (it holds state_name). Anything else (a folder of the user's, /) is refused."""
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise UserError(f'{what} {folder} is a file; give a folder for the run')
    if not (folder / state_name).is_file() and any(folder.iterdir()):
        raise UserError(f'{what} {folder} holds other files and is not a run folder of this tool (it has no '
                        f'{state_name}): give a new or empty folder; nothing in it was changed')


class RunState:
    """data[section][name] = {done, exp_dir, seconds, ...} per stage; `extra()` adds run-wide fields at each save."""

    def __init__(self, path, section, data=None, dry_run=False, extra=None):
        self.path, self.section, self.dry_run, self.extra = path, section, dry_run, extra
        self.lock = threading.Lock()
        self.data = read_state(path) if data is None else data
        self.data.setdefault(section, {})

    @property
    def stages(self):
        return self.data[self.section]

    def get(self, name):
        return self.stages.get(name, {})

    def save(self):
        if self.dry_run:
            return
        with self.lock:
            if self.extra:
                self.data.update(self.extra())
            atomic_write_text(self.path, json.dumps(self.data, indent=1))

    def record(self, name, **info):
        with self.lock:
            self.stages[name] = {**self.stages.get(name, {}), **info}
        self.save()
