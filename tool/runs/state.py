"""The resumable state of a multi-stage run (quickstart, ablation): one JSON file of finished stages and what
they produced, rewritten atomically after every change, so an interrupted run continues where it stopped."""
import json
import threading

from common.errors import UserError
from common.io import atomic_write_text


def read_state(path, default=None):
    """A state file's content; `default` (else {}) when it is missing; one line when it is corrupt."""
    if not path.is_file():
        return {} if default is None else default
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise UserError(f'{path} is not valid JSON; delete it (finished experiment folders are found again) or '
                        f'start over') from None
    if not isinstance(data, dict):
        raise UserError(f'{path} is not a run state (a JSON object); delete it or start over')
    return data


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
