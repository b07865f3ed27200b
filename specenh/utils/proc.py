"""Process helpers for stage workers started by a launcher (``utils/run.pl``)."""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

DEATHSIG_ENV = "SPECENH_DIE_WITH_PARENT"  # set by utils/run.pl for its jobs
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> bool:
    """Under ``utils/run.pl`` (``$SPECENH_DIE_WITH_PARENT`` set), ask the kernel for SIGTERM when the
    parent process dies, so a worker started by a job's shell does not outlive a killed launcher and
    go on writing outputs a rerun is replacing. Returns whether the death signal was armed."""
    if not os.environ.get(DEATHSIG_ENV) or not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        return False
    return True
