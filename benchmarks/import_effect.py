"""Does importing the package slow torch down? Issue 49's question, asked directly.

Each run is a fresh process that builds the flan-t5-base-shaped policy (random weights,
float32, on the CPU), warms up, and times one batch of `--batch` prompts generating exactly
`--new-tokens` tokens, three times, keeping the fastest. Half the runs first import
`detox_helpers.evaluation` (the one import bench_evaluation.py gained between 904fff8 and the
script that read 1.5x slower), half do not; the two kinds alternate, so a machine that slows
down over the runs slows both. Each run also reports torch's threads and the machine's CPU
time spent elsewhere while it ran: the other processes' (from /proc/stat, all CPUs, minus this
process's own) and the hypervisor's steal (`idle.py`).

    .venv/bin/python benchmarks/import_effect.py --runs 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from idle import Watch

ONE_RUN = """
import json, os, sys, time
import torch
from shapes import benchmark_dialogues, flan_t5_base_shape, tokenizers
if sys.argv[1] == "import":
    import detox_helpers.evaluation  # noqa: F401
prompts, _ = benchmark_dialogues()
t5_tok, _ = tokenizers(prompts)
batch, tokens = int(sys.argv[2]), int(sys.argv[3])
policy = flan_t5_base_shape(torch.float32, torch.device("cpu"))
ids = t5_tok((prompts * batch)[:batch], return_tensors="pt", padding=True)
kwargs = dict(do_sample=True, top_k=0, top_p=1.0, min_new_tokens=tokens, max_new_tokens=tokens)
with torch.no_grad():
    policy.generate(**ids, do_sample=True, min_new_tokens=4, max_new_tokens=4)  # warm-up
    times = []
    for _ in range(3):
        started = time.perf_counter()
        policy.generate(**ids, **kwargs)
        times.append(time.perf_counter() - started)
print(json.dumps(dict(seconds=min(times), threads=torch.get_num_threads(),
                      interop=torch.get_num_interop_threads(),
                      omp=os.environ.get("OMP_NUM_THREADS"))))
"""


def one_run(kind: str, batch: int, tokens: int) -> dict:
    with Watch() as watch:
        done = subprocess.run([sys.executable, "-c", ONE_RUN, kind, str(batch), str(tokens)],
                              capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent, env={**os.environ, "PYTHONPATH": "."})
    return json.loads(done.stdout.strip().splitlines()[-1]) | dict(kind=kind, load=watch.line())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="processes in all, alternating")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=40)
    args = parser.parse_args()
    results = []
    for number in range(args.runs):
        kind = ("plain", "import")[number % 2]
        results.append(result := one_run(kind, args.batch, args.new_tokens))
        print(f"run {number + 1} ({kind:6}): {result['seconds']:.2f} s for {args.batch} x "
              f"{args.new_tokens} tokens; threads {result['threads']} (interop "
              f"{result['interop']}, OMP_NUM_THREADS {result['omp']}); {result['load']}",
              flush=True)
    medians = {}
    for kind in ("plain", "import"):
        seconds = [r["seconds"] for r in results if r["kind"] == kind]
        medians[kind] = statistics.median(seconds)
        print(f"{kind}: median {medians[kind]:.2f} s, range {min(seconds):.2f}-"
              f"{max(seconds):.2f} s over {len(seconds)} runs")
    print(f"with the import / without: {medians['import'] / medians['plain']:.3f}")

if __name__ == "__main__":
    main()
