"""Errors that are the user's to fix (a missing file, a bad config key...).

Entry scripts catch `UserError` and print its message as one line, without a traceback, so the
message must name the file or key and say what to do.
"""


class UserError(Exception):
    pass


def check_number(name, value, low, high=None, hint='', default=None):
    """value, when it is a finite number in [low, high] (high None: no upper end); else one line naming `name`, the
    bound it breaks and the closest valid value (every number a user gives: config keys, tools' flags)."""
    import math
    if math.isfinite(value) and low <= value and (high is None or value <= high):
        return value
    hint = f' ({hint})' if hint else ''
    bound = None if math.isnan(value) else low if value < low else high
    if bound is not None:
        raise UserError(f'{name} must be {">=" if value < low else "<="} {bound}{hint}, got {value}; the closest valid '
                        f'value is {bound}')
    raise UserError(f'{name} must be a finite number >= {low}{hint}, got {value}'
                    + (f'; e.g. {default} (the default)' if default is not None else ''))


class Terminated(KeyboardInterrupt):
    """SIGTERM (what `timeout`, schedulers and `kill` send), raised like Ctrl-C so that clean-up code runs."""


def _terminate(signum, frame):
    raise Terminated()


def _check_clone():
    """One line instead of silently running another clone's code: the running script lies in one clone of this
    project and Python imports the project from another (where the editable install was made)."""
    import sys
    from common.paths import ROOT, foreign_clone
    script = getattr(sys.modules.get('__main__'), '__file__', None)
    other = foreign_clone(script) if script else None
    if other is not None:
        raise UserError(f'{script} belongs to {other}, but Python imports this project from {ROOT} (its editable '
                        f'install): run `bash requirements.sh` (or pip install --no-deps -e .) in {other} to switch '
                        f'this Python to it')


def run_cli(main):
    """Run an entry point; a UserError ends it with its one line on stderr and exit code 2, an OS error (disk full,
    read-only or missing folder) with one line and code 1, Ctrl-C with one line and code 130, SIGTERM likewise with
    code 143 (after the same clean-up as Ctrl-C)."""
    import signal
    import sys
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        _check_clone()
        return main()
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        what = 'terminated (SIGTERM)' if terminated else 'interrupted'
        print(f'{what} {e.args[0]}' if e.args else what, file=sys.stderr)   # args: where, and how to go on
        sys.exit(143 if terminated else 130)
    except OSError as e:
        where = f': {e.filename}' if e.filename else ''
        print(f'error: {e.strerror or e}{where}', file=sys.stderr)
        sys.exit(1)
