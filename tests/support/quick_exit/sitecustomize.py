"""Loaded by the processes the tests start (daphne, Celery workers, the A2A peer): once such a
process has exited with `sys.exit(code)`, it skips the interpreter's final teardown.

Everything a process does on its way out runs first, in order: its shutdown (a worker's goodbye,
its executor's leases handed back, its spans flushed), then every `atexit` handler registered
after this one (logging's flush among them). What is skipped is only the interpreter freeing
every object and module, a second or more of CPU for a process that imported Django, Celery and
LiteLLM, which no test looks at. A process ending on an uncaught exception, or without
`sys.exit`, keeps the usual teardown and its exit code.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

_exit_code: list[int] = []
_sys_exit = sys.exit


def _recording_exit(status: object = None) -> None:
    if threading.current_thread() is not threading.main_thread():
        pass  # ends only that thread
    elif status is None:
        _exit_code[:] = [0]
    elif isinstance(status, int):
        _exit_code[:] = [status]
    else:  # a message: printed to stderr, exit code 1
        _exit_code.clear()
    _sys_exit(status)


def _quick_exit() -> None:
    # Registered first, so it runs last of the atexit handlers.
    if _exit_code and getattr(sys, "last_value", None) is None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_code[0])


sys.exit = _recording_exit
atexit.register(_quick_exit)
