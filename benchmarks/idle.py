"""Was the machine idle while a benchmark timed? The CPU time the rest of the machine used
meanwhile: all CPUs' busy time (/proc/stat, Linux) minus this process's own and its
children's, and the hypervisor's steal. Issue 49's figures that disagreed by 1.5x came from
runs that shared two cores with other work; a benchmark prints this line beside its times, so a
figure taken on a busy machine says so.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

STAT = Path("/proc/stat")


def _machine() -> tuple[float, float]:
    """(busy, steal) seconds of all CPUs since boot; zeros where /proc/stat is missing."""
    if not STAT.exists():
        return 0.0, 0.0
    fields = [int(x) for x in STAT.read_text().split("\n")[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    hertz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / hertz, steal / hertz


def _own() -> float:
    """CPU seconds of this process (all its threads) and its waited-for children."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


class Watch:
    """`with Watch() as watch: ...`, then `watch.line()`: how busy the rest of the machine
    was over the block, as a share of one core."""

    def __enter__(self):
        self.started, (self.busy, self.steal), self.own = time.time(), _machine(), _own()
        return self

    def __exit__(self, *_):
        busy, steal = _machine()
        self.wall = time.time() - self.started
        self.elsewhere = max(busy - self.busy - (_own() - self.own), 0.0)
        self.stolen = steal - self.steal

    def line(self) -> str:
        if not STAT.exists():
            return "the machine's load: unknown (no /proc/stat)"
        share = self.elsewhere / self.wall if self.wall else 0.0
        verdict = "idle enough" if share < 0.1 else "NOT idle: compare only ratios from this run"
        return (f"the rest of the machine over these {self.wall:.0f} s: {self.elsewhere:.1f} CPU-s "
                f"({share:.0%} of a core), steal {self.stolen:.1f} s ({verdict})")
