"""Errors that are the user's to fix (a missing file, a bad config key...).

Entry scripts catch `UserError` and print its message as one line, without a traceback, so the
message must name the file or key and say what to do.
"""


class UserError(Exception):
    pass


def run_cli(main):
    """Run an entry point; a UserError ends it with its one line on stderr and exit code 2, an OS error (disk full,
    read-only or missing folder) with one line and code 1, Ctrl-C with one line and code 130."""
    import sys
    try:
        return main()
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)
    except OSError as e:
        where = f': {e.filename}' if e.filename else ''
        print(f'error: {e.strerror or e}{where}', file=sys.stderr)
        sys.exit(1)
