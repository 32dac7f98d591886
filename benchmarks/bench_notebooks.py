"""Notebooks 03 (evaluation) and 04 (PPO) as a learner runs them, against the lab's way, timed.

Both ways run in one process, on the same models, on the CPU or the GPU path alike.

The notebooks' way: random-weight models of the real lab's shapes (flan-t5-base and a
roberta-base classifier, shapes.py) saved with their tokenizers to a temporary folder, and
DialogSum's dialogues (the sample beside the checkout, ../shared/data/dialogsum, else the tiny
fixture's written out as CSV), handed to the lab as a user does: DETOX_PROFILE=full,
DETOX_POLICY_MODEL, DETOX_REWARD_MODEL, DETOX_DATASET, DETOX_DEVICE and small counts. Notebooks
01, 03 and 04 then run in this process (`run_notebook_here`: their own cells, imports, settings
and precision rule, `choose_dtype`). Timed: notebook 03's `evaluate_policy` call (generation,
reward, prompt+summary toxicity, judge and ROUGE; seconds per evaluated summary) and the last
step of notebook 04's loop (the `seconds` its history records; the first step warms up, and on
CUDA compiles the static cache).

The lab's way, on the same saved models: bench_evaluation's `lab_way` (one prompt at a time:
generate, score prompt+summary) and bench_ppo's lab step (one prompt at a time, prompt+summary
rewards, trl's step), in float32 on the CPU and the default precision on a GPU
(`bench_evaluation.precisions`), the token budget pinned with min_new_tokens.

The notebooks sample as the lab does, with `min_length` (min_summary_tokens), not
min_new_tokens: a summary may end before its budget. The tokens they generated are counted
(the token ids of evaluation's `generate`, the history's `response_length`) and printed beside
the times, with a ratio per token where they fall short. (flan-t5-base's random weights draw
its pad token, id 0, at every step: their summaries run the whole budget and decode to empty
text; the output says so.)

    python benchmarks/bench_notebooks.py                  # CPU-sized defaults
    python benchmarks/bench_notebooks.py --device cuda --eval-size 128 --samples-per-prompt 4 \
        --lab-samples 8 --steps 3                         # GPU
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch
from bench_evaluation import lab_way, precisions, short, sync
from bench_ppo import build_trainer, lab_generation, ppo_step
from idle import Watch
from shapes import SHARED_DIALOGSUM, benchmark_dialogues, save_full_shape_models

import detox_helpers.evaluation as evaluation
from detox_helpers.tiny import fixture
from detox_helpers.unattended import run_notebook_here


def dataset_folder(folder: Path) -> Path:
    """The DialogSum sample the benchmarks read when it is at hand, else the tiny fixture's
    dialogues as a CSV in DialogSum's columns."""
    shared = Path(os.environ.get("BENCH_DIALOGSUM_DIR", SHARED_DIALOGSUM))
    if shared.exists() and any(shared.glob("*.jsonl")):
        return shared
    folder.mkdir(parents=True)
    table = pd.DataFrame(fixture.make_dialogues()).rename(columns={"fname": "id"})
    table[["id", "dialogue", "summary", "topic"]].to_csv(folder / "dialogues.csv", index=False)
    return folder


@contextmanager
def timed_evaluation(repeats: int, device):
    """While inside: `evaluate_policy` runs `repeats` times a call (the last result returned),
    each call's seconds appended to `calls`, and the new tokens of each summary its generation
    drew (the start token left out, a `</s>` counted) kept in `tokens`."""
    record = dict(calls=[], tokens=[])
    evaluate_policy, generate = evaluation.evaluate_policy, evaluation.generate

    def timed(*args, **kwargs):
        for _ in range(repeats):
            sync(device)
            started = time.perf_counter()
            result = evaluate_policy(*args, **kwargs)
            sync(device)
            record["calls"].append(time.perf_counter() - started)
        return result

    def counted(*args, **kwargs):
        generated = generate(*args, **kwargs)
        record["tokens"] = [len(ids) - 1 for ids in generated.token_ids]
        return generated

    evaluation.evaluate_policy, evaluation.generate = timed, counted
    try:
        yield record
    finally:
        evaluation.evaluate_policy, evaluation.generate = evaluate_policy, generate


def than_lab(lab: float, ours: float) -> str:
    """`lab` seconds against `ours` as "Nx faster" (or slower) "than the lab's way"."""
    ratio = lab / ours
    return (f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower") + \
        " than the lab's way"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--eval-size", type=int, default=8, help="test prompts evaluated")
    parser.add_argument("--samples-per-prompt", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=100,
                        help="evaluation's token budget (DETOX_EVAL_MAX_NEW_TOKENS)")
    parser.add_argument("--eval-calls", type=int,
                        help="times notebook 03's evaluate_policy call runs, the last reported "
                             "(default: 2 on CUDA, where the first compiles; 1 on the CPU)")
    parser.add_argument("--steps", type=int, default=2, help="notebook 04's PPO steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--mini-batch-size", type=int, default=4)
    parser.add_argument("--ppo-tokens", type=int, default=60,
                        help="PPO's token budget, pinned: output_min_length N, max N+1")
    parser.add_argument("--lab-samples", type=int, default=2,
                        help="summaries the lab's way evaluates")
    parser.add_argument("--lab-steps", type=int, default=1,
                        help="timed PPO steps the lab's way, after one untimed (0: none)")
    parser.add_argument("--lab-precision", choices=("float32", "bfloat16"),
                        help="the lab's way's weights (default: float32 on the CPU; the "
                             "default precision on a GPU)")
    args = parser.parse_args()
    if args.batch_size % args.mini_batch_size:
        parser.error("--mini-batch-size must divide --batch-size")
    device = torch.device(args.device)
    eval_calls = args.eval_calls or (2 if device.type == "cuda" else 1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"

    with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as scratch:
        scratch = Path(scratch)
        prompts, source = benchmark_dialogues()
        policy_folder, reward_folder = save_full_shape_models(scratch / "models", prompts)
        settings = dict(
            PROFILE="full", POLICY_MODEL=policy_folder, REWARD_MODEL=reward_folder,
            DATASET=dataset_folder(scratch / "dialogsum"), ARTIFACTS_DIR=scratch / "artifacts",
            DEVICE=args.device, EVAL_SIZE=args.eval_size,
            EVAL_SAMPLES_PER_PROMPT=args.samples_per_prompt,
            EVAL_MAX_NEW_TOKENS=args.new_tokens, MAX_PPO_STEPS=args.steps,
            BATCH_SIZE=args.batch_size, MINI_BATCH_SIZE=args.mini_batch_size,
            OUTPUT_MIN_LENGTH=args.ppo_tokens, OUTPUT_MAX_LENGTH=args.ppo_tokens + 1)
        for key, value in settings.items():
            os.environ[f"DETOX_{key}"] = str(value)
            print(f"DETOX_{key}={value}")

        run_notebook_here("01")
        # notebook 03's cell imports evaluate_policy when it runs: the timed one
        with timed_evaluation(eval_calls, device) as record:
            notebook = run_notebook_here("03")
        dtype, why = notebook["dtype"], notebook["why"]
        calls, lengths = record["calls"], pd.Series(record["tokens"])
        characters = notebook["baseline"].per_sample["summary"].str.len().mean()
        test = notebook["splits"]["test"]
        eval_prompts = [notebook["settings"].prompt_template.format(dialogue=d)
                        for d in test["dialogue"][:args.lab_samples]]
        del notebook
        gc.collect()

        notebook = run_notebook_here("04")
        history, lab_settings = notebook["history"], notebook["settings"]
        rows = notebook["train_split"].select(range(args.batch_size))
        del notebook
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

        # The lab's way, on the same saved models.
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from detox_helpers.reward import load_reward_model

        lab_dtype = precisions(args, device)[0]
        tokenizer = AutoTokenizer.from_pretrained(policy_folder)
        policy = AutoModelForSeq2SeqLM.from_pretrained(policy_folder, dtype=lab_dtype)
        policy = policy.to(device).eval()
        reward_model = load_reward_model(lab_settings, device)
        lab_way(policy, tokenizer, reward_model, eval_prompts[:1], 2, device)  # warm-up
        lab_eval = sum(lab_way(policy, tokenizer, reward_model, eval_prompts, args.new_tokens,
                               device).values())
        lab_step = None
        if args.lab_steps:
            trainer = build_trainer(lab_settings, policy, tokenizer)
            queries = [ids.to(device) for ids in rows["input_ids"]]

            def step():
                return ppo_step(trainer, tokenizer, reward_model, list(rows["query"]), queries,
                                args.ppo_tokens, lab_generation, "prompt+summary", device,
                                "dynamic")
            step()  # warm-up, as bench_ppo
            lab_step = [step() for _ in range(args.lab_steps)]

    summaries = len(lengths)
    ours_eval = calls[-1] / summaries
    print(f"\n=== {name}; prompts from {source}")
    print(f"notebooks' precision: {short(dtype)} ({why}); the lab's way: {short(lab_dtype)}")
    print(f"notebook 03, evaluate_policy: {summaries} summaries "
          f"({args.eval_size} prompts x {args.samples_per_prompt}) in {calls[-1]:.2f} s, "
          f"{ours_eval:.4f} s/summary" + (f" (calls: {', '.join(f'{c:.2f}' for c in calls)} s)"
                                          if len(calls) > 1 else ""))
    print(f"  new tokens per summary (the start token left out): mean {lengths.mean():.1f}, "
          f"min {lengths.min()}, max {lengths.max()} of a budget of {args.new_tokens}; they "
          f"decode to {characters:.0f} characters on average")
    print(f"lab's way (one at a time, {short(lab_dtype)}, {len(eval_prompts)} summaries, "
          f"{args.new_tokens} tokens pinned): {lab_eval:.4f} s/summary")
    print(f"  notebook 03: {than_lab(lab_eval, ours_eval)} per summary")
    if lengths.mean() < args.new_tokens:
        print(f"  notebook 03: {than_lab(lab_eval / args.new_tokens, calls[-1] / lengths.sum())}"
              " per generated token")

    last = history[-1]
    new_tokens = last["response_length"] - 1  # the decoder's start token is not generated
    print(f"notebook 04, PPO step {last['step']} of {len(history)} (batch {args.batch_size}, "
          f"mini-batch {args.mini_batch_size}): {last['seconds']:.2f} s (steps: "
          f"{', '.join(format(row['seconds'], '.2f') for row in history)} s)")
    print(f"  new tokens per summary (history's response_length less the start token): mean "
          f"{new_tokens:.1f} of a budget of {args.ppo_tokens}")
    if lab_step:
        phases = {k: sum(s[k] for s in lab_step) / len(lab_step) for k in lab_step[0]}
        total = sum(phases.values())
        print(f"lab's way (one prompt at a time, prompt+summary, {short(lab_dtype)}, "
              f"{args.ppo_tokens} tokens pinned): {total:.2f} s per step (generation "
              f"{phases['generation']:.2f}, reward {phases['reward']:.2f}, optimisation "
              f"{phases['optimisation']:.2f})")
        print(f"  notebook 04: {than_lab(total, last['seconds'])} per step")
        if new_tokens < args.ppo_tokens:
            per_token = than_lab(total / args.ppo_tokens, last["seconds"] / new_tokens)
            print(f"  notebook 04: {per_token} per generated token")
    if lengths.mean() < args.new_tokens or new_tokens < args.ppo_tokens:
        print("note: the notebooks' summaries stopped before their budget: they sample with "
              "min_length=min_summary_tokens (the lab's), not min_new_tokens, so on random "
              "weights a summary ends where </s> is drawn; the lab's way here is pinned")
    if characters == 0:
        print("note: the random-weight policy draws token ids that decode to nothing (its pad "
              "token, 0, on these weights), so every summary is empty text: the reward and "
              "ROUGE read empty summaries, prompt+summary the prompt alone, in both ways")


if __name__ == "__main__":
    with Watch() as watch:  # whether the machine was idle while it timed (issue 49)
        main()
    print(watch.line())
