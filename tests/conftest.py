import os
import subprocess
from pathlib import Path

import pytest

# pytest.ini's `pythonpath = .` makes this clone's packages the ones the tests import; the scripts the tests start
# (main/train.py, tool/quickstart.py, ...) get the same through PYTHONPATH, whichever clone the editable install
# points to.
ROOT = Path(__file__).resolve().parents[1]
os.environ['PYTHONPATH'] = os.pathsep.join([str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
                                                          if p and Path(p).resolve() != ROOT])


@pytest.fixture(scope='session')
def renderer():
    """A Renderer, or a skip naming why this machine has no EGL context."""
    from common.errors import UserError
    from common.render import renderer as render
    try:
        render.get_context()
    except UserError as e:
        pytest.skip(f'no EGL context on this machine: {e}')
    return render.Renderer()


def pytest_collection_modifyitems(items):
    """Tests that use the renderer carry the `renderer` marker (-m "not renderer" on a machine without EGL)."""
    for item in items:
        if 'renderer' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.renderer)


def tree_state():
    """git's view of the working tree (changed and untracked files, ignored ones left out), or None outside a clone."""
    try:
        r = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all'], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return set(r.stdout.splitlines()) if r.returncode == 0 else None


def pytest_sessionstart(session):
    session.config.stash[TREE] = tree_state()


def pytest_sessionfinish(session, exitstatus):
    """The suite leaves the working tree as it found it: a file a test or a tool wrote outside the ignored folders
    (output/, caches) fails the run, named; what was there before the run does not count."""
    before, after = session.config.stash.get(TREE, None), tree_state()
    new = sorted(after - before) if before is not None and after is not None else []
    if new:
        reporter = session.config.pluginmanager.get_plugin('terminalreporter')
        if reporter is not None:
            reporter.write_line(f'the suite changed the working tree: {", ".join(new[:10])}', red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


TREE = pytest.StashKey()
