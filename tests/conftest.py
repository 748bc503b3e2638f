import os
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
