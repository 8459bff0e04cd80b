"""Metrics across `chatkeep serve --workers N`: prometheus_client's multiprocess mode.

The supervisor prepares one directory before it forks: each worker keeps its values in
files there (one per process and kind of metric), and `/metrics` in any worker adds up every
file. When a worker dies its live gauge (streams open) is dropped; its counters and
histograms stay counted, so a total never goes backwards when a worker is replaced.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import multiprocess, values

# prometheus_client's own name for the directory; its value files read it when they open.
ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class WorkerMetricsDir:
    """The directory of the workers' metric files, from start to exit of the supervisor."""

    def __init__(self, path: Path, *, owned: bool) -> None:
        self.path = path
        self._owned = owned

    @classmethod
    def prepare(cls, configured: Path | None) -> WorkerMetricsDir:
        """A fresh temporary directory, or `configured` emptied of old files; then this
        process (and the workers it forks) keep metric values there."""
        if configured is None:
            made = cls(Path(tempfile.mkdtemp(prefix="chatkeep-metrics-")), owned=True)
        else:
            configured.mkdir(parents=True, exist_ok=True)
            for old in configured.glob("*.db"):  # a previous run's: they would add up
                old.unlink()
            made = cls(configured, owned=False)
        use_multiprocess_values(made.path)
        return made

    def worker_died(self, pid: int) -> None:
        """Drop what a dead worker held live (its streams open); its counts remain."""
        multiprocess.mark_process_dead(pid, str(self.path))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.path, ignore_errors=True)


def use_multiprocess_values(path: Path) -> None:
    """Make the metrics this process creates from now on keep their values in `path`.

    prometheus_client picks its value class when first imported, from the environment
    variable; chatkeep learns that it has workers only from its settings, after that
    import, so the choice is made again here, once, before any worker is forked.
    """
    os.environ[ENVIRONMENT_VARIABLE] = str(path)
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
