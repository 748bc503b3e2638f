"""The suite leaves the working tree as it found it (tests/conftest.py): a run whose test writes a file into the
clone fails and names the file; a file that was there before the run does not count."""
import subprocess
import sys

from tests.conftest import ROOT

WRITER = '''
from pathlib import Path
def test_writes():
    Path({path!r}).parent.mkdir(exist_ok=True)
    Path({path!r}).write_text('x')
'''


def run_writer(tmp_path, path):
    test = tmp_path / 'test_writer.py'
    test.write_text(WRITER.format(path=str(path)))
    return subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'tests.conftest', '-p', 'no:cacheprovider',
                           str(test)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_file_written_into_the_clone_fails_the_run(tmp_path):
    stray = ROOT / f'stray_{tmp_path.name}.txt'
    try:
        r = run_writer(tmp_path, stray)
        assert r.returncode == 1 and f'the suite changed the working tree: ?? {stray.name}' in r.stdout, r.stdout
    finally:
        stray.unlink(missing_ok=True)


def test_files_there_before_the_run_and_ignored_ones_do_not_count(tmp_path):
    before = ROOT / f'before_{tmp_path.name}.txt'
    before.write_text("the user's")
    try:
        assert run_writer(tmp_path, before).returncode == 0   # rewritten, but it was there already
        assert run_writer(tmp_path, ROOT / 'output' / f'ignored_{tmp_path.name}.txt').returncode == 0
    finally:
        before.unlink(missing_ok=True)
        (ROOT / 'output' / f'ignored_{tmp_path.name}.txt').unlink(missing_ok=True)
