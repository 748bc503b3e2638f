import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


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
