"""How long `make demo` takes (issue 48's limit: 4 minutes on an idle 2-core machine), with
how busy the rest of the machine was meanwhile (`idle.py`), so that a slow run taken beside
other work says so. Each run is the demo's own command, in a fresh artifacts folder; the
notebooks' times are the ones the command prints.

    .venv/bin/python benchmarks/demo_time.py --runs 2
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from idle import Watch


def one_demo() -> tuple[float, str, list[str]]:
    with tempfile.TemporaryDirectory() as artifacts, Watch() as watch:
        started = time.perf_counter()
        printed = subprocess.run([sys.executable, "-m", "detox_course", "demo"], check=True,
                                 capture_output=True, text=True,
                                 env=os.environ | {"DETOX_ARTIFACTS_DIR": artifacts}).stdout
        seconds = time.perf_counter() - started
    notebooks = re.findall(r"running (\d\d)_.*?done in (\d+) s", printed, flags=re.S)
    return seconds, watch.line(), [f"{number} {spent} s" for number, spent in notebooks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    for run in range(1, parser.parse_args().runs + 1):
        seconds, load, notebooks = one_demo()
        print(f"demo {run}: {seconds // 60:.0f} min {seconds % 60:.0f} s "
              f"(notebooks: {', '.join(notebooks)}); {load}", flush=True)


if __name__ == "__main__":
    main()
