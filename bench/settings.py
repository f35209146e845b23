"""The project's settings, with static files collected into a folder of the benchmark's own.

Production settings (DEBUG off) use the manifest storage, which needs `collectstatic`; the
benchmark collects into BENCH_STATIC_ROOT instead of the shared .data/staticfiles.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from practice.settings import *  # noqa: F403

STATIC_ROOT = Path(
    os.environ.get("BENCH_STATIC_ROOT")
    or Path(tempfile.gettempdir()) / f"practice-bench-static-{os.getuid()}"
)
