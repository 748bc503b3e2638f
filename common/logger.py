"""Text log (file + console) shared by every entry script; TensorBoard lives in the trainer."""
import logging
import sys

FMT = '%(asctime)s %(levelname).1s %(message)s'
DATEFMT = '%m-%d %H:%M:%S'


class LogFile(logging.FileHandler):
    """The log file. A failed write (a full disk) is one warning line on stderr naming the file, once, and the file is
    given up; the console log goes on (logging's default prints a traceback for every record)."""
    failed = False

    def emit(self, record):
        if not self.failed:
            super().emit(record)

    def handleError(self, record):
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            return super().handleError(record)
        self.failed = True
        print(f'warning: cannot write the log {self.baseFilename} ({error.strerror or error}); it stops here, the '
              f'console log goes on', file=sys.stderr)


def setup_logger(log_file=None, rank=0, level=logging.INFO):
    """Root logger: console on rank 0 only, plus a file when given. Idempotent."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, '_sefd', False):
            root.removeHandler(h)
    root.setLevel(level if rank == 0 else logging.WARNING)
    handlers = [logging.NullHandler()]  # other ranks stay silent (no last-resort printing)
    if rank == 0:
        handlers.append(logging.StreamHandler(sys.stdout))
        if log_file:
            handlers.append(LogFile(log_file))
    for h in handlers:
        h._sefd = True
        h.setFormatter(logging.Formatter(FMT, DATEFMT))
        root.addHandler(h)
    return logging.getLogger('sefd')
