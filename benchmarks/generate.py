"""Generation speed: the article's loop against rollgen's batched sampler, on the same trained model and primers.

    python benchmarks/generate.py [--model models/model.keras] [--article-model seed.keras] [--repeats 5]

The article's loop calls `model.predict` on a window, which a NADE model (convnade, nade) cannot answer
without the next frame, so it runs on `--article-model` (default: `--model`), which must be factorised
(seed, lstm, convlstm): for the default model, pass the article's network, trained with `dvc exp run
-S train.model=seed` (its models/model.keras, copied aside).

- article: its loop as published, one `model.predict` per step per piece (batch 1) with vanish_proof, for
  `--article-pieces` pieces x `--article-steps` steps (kept short: it is slow), on `--article-model`;
- rollgen: `rollgen.generate.sample_frames`, all pieces together, one compiled model call per step, on
  the same primers and vanish_proof, first with the article's model, pieces and steps (the frames should
  agree), then with `--model` for `--pieces` x `--steps` with the model call as a plain tf.function
  (rollgen's default) and XLA-compiled (`jit_compile=True`), and with params.yaml's sampling. Each run
  includes building (and compiling) the step function, as a user pays it; "steady" figures leave that out.
Times are medians of `--repeats` runs, in ms per generated step per piece; the ratio is the article's over
rollgen's with params.yaml's sampling at `--pieces` pieces. Prints a summary, then all figures as one JSON
object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from rollgen import paths
from rollgen.generate import choose_primers, sample_frames, sampler_from_params
from rollgen.models import is_autoregressive, load_model
from rollgen.params import load_params
from rollgen.sampling import make_sampler
from rollgen.windows import load_split


def article_loop(model, primer: np.ndarray, steps: int) -> np.ndarray:
    """The article's generation loop for one primer (context, 106): frames uint8 (steps, 106)."""
    x_input = primer[None]  # the article's (1, ...) batch of one window
    vanish_proof = 0.65
    vanish_inc = 1.001
    song = []
    for _ in range(steps):
        pred = model.predict(x_input, verbose=0)
        pred = pred + vanish_proof
        vanish_proof *= vanish_inc
        notes = (pred.astype(np.uint8)).reshape(106)
        song.append(notes)
        x_input = np.concatenate([x_input[:, 1:], notes.reshape(1, 1, 106).astype(x_input.dtype)], axis=1)
    return np.stack(song)


def seconds(function, *args) -> tuple[float, object]:
    """Wall seconds `function(*args)` took, and what it gave back."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def rollgen_run(model, primers: np.ndarray, steps: int, jit_compile: bool, params: dict | None = None):
    """One `sample_frames` call as the generate stage makes it (fresh sampler and generator): vanish_proof,
    as the article, or the sampler of `params` (a `generate:` section)."""
    sampler = sampler_from_params(params) if params else make_sampler("vanish_proof")
    return sample_frames(
        model, primers, steps, sampler, np.random.default_rng(0), progress=False, jit_compile=jit_compile
    )


def median_ms(values: list[float], per: int) -> float:
    """Median of `values` (seconds) in milliseconds per `per` units."""
    return round(1000 * statistics.median(values) / per, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=paths.MODEL, help="a trained .keras model")
    parser.add_argument("--article-model", type=Path, help="a factorised .keras model for the article's loop")
    parser.add_argument("--windows", type=Path, default=paths.WINDOWS_DIR, help="folder of the window archives")
    parser.add_argument("--article-pieces", type=int, default=2)
    parser.add_argument("--article-steps", type=int, default=30)
    parser.add_argument("--pieces", type=int, default=64)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import tensorflow as tf

    model = load_model(args.model)
    article_model = load_model(args.article_model) if args.article_model else model
    if is_autoregressive(article_model):
        parser.error(
            f"{args.article_model or args.model} is a NADE model ({article_model.name}); the article's loop needs"
            " a factorised one: train the article's network with `dvc exp run -S train.model=seed` and pass its"
            " model.keras with --article-model"
        )
    primers = choose_primers(load_split("test", args.windows)["x"], args.pieces, np.random.default_rng(args.seed))
    few = primers[: args.article_pieces]
    article_model.predict(few[:1], verbose=0)  # Keras builds its predict function on the first call: not timed

    article_times, article_frames = [], None
    for _ in range(args.repeats):
        took, article_frames = seconds(
            lambda: np.stack([article_loop(article_model, p, args.article_steps) for p in few])
        )
        article_times.append(took)
    small_times, small_frames = [], None
    for _ in range(args.repeats):
        took, small_frames = seconds(rollgen_run, article_model, few, args.article_steps, False)
        small_times.append(took)
    agree = float((article_frames == small_frames).mean())

    timings: dict[str, list[float]] = {"plain": [], "xla": [], "plain_first_step": [], "xla_first_step": []}
    for _ in range(args.repeats):  # interleaved, so a busy moment of the machine hits both alike
        for name, jit in (("plain", False), ("xla", True)):
            timings[name].append(seconds(rollgen_run, model, primers, args.steps, jit)[0])
            timings[f"{name}_first_step"].append(seconds(rollgen_run, model, primers, 1, jit)[0])
    defaults = load_params("generate")
    default_times = [seconds(rollgen_run, model, primers, args.steps, False, defaults)[0] for _ in range(args.repeats)]

    pieces_steps = args.pieces * args.steps
    article_ms = median_ms(article_times, args.article_pieces * args.article_steps)
    figures = {
        "article_ms_per_step_per_piece": article_ms,
        "rollgen_same_batch_ms_per_step_per_piece": median_ms(small_times, args.article_pieces * args.article_steps),
        "frames_agree_with_article": agree,
        "rollgen_plain_ms_per_step_per_piece": median_ms(timings["plain"], pieces_steps),
        "rollgen_xla_ms_per_step_per_piece": median_ms(timings["xla"], pieces_steps),
        "rollgen_plain_ms_per_batch_step_steady": round(
            1000
            * (statistics.median(timings["plain"]) - statistics.median(timings["plain_first_step"]))
            / (args.steps - 1),
            3,
        ),
        "rollgen_xla_ms_per_batch_step_steady": round(
            1000
            * (statistics.median(timings["xla"]) - statistics.median(timings["xla_first_step"]))
            / (args.steps - 1),
            3,
        ),
        "rollgen_plain_first_step_s": round(statistics.median(timings["plain_first_step"]), 3),
        "rollgen_xla_first_step_s": round(statistics.median(timings["xla_first_step"]), 3),
        "rollgen_plain_pieces_per_s": round(args.pieces / statistics.median(timings["plain"]), 2),
        "rollgen_xla_pieces_per_s": round(args.pieces / statistics.median(timings["xla"]), 2),
        "rollgen_default_pieces_per_s": round(args.pieces / statistics.median(default_times), 2),
        "model": model.name,
        "article_model": article_model.name,
        "article_pieces": args.article_pieces,
        "article_steps": args.article_steps,
        "pieces": args.pieces,
        "steps": args.steps,
        "repeats": args.repeats,
        "cores": os.cpu_count(),
        "gpu": bool(tf.config.list_logical_devices("GPU")),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
    }
    default_ms = round(1000 * statistics.median(default_times) / pieces_steps, 4)
    figures["rollgen_default_ms_per_step_per_piece"] = default_ms
    figures["ratio_article_to_rollgen"] = round(article_ms / default_ms, 1)

    print(f"ms per generated step per piece (medians of {args.repeats}; {figures['cores']} cores)")
    print(f"  article ({article_model.name}), model.predict per step, batch 1: {article_ms:10.4f}")
    print(
        f"  rollgen, same {args.article_pieces} pieces x {args.article_steps} steps:          "
        f"{figures['rollgen_same_batch_ms_per_step_per_piece']:10.4f}  (frames agree: {agree:.2%})"
    )
    print(
        f"  rollgen ({model.name}), {args.pieces} x {args.steps}, plain tf.function:    "
        f"{figures['rollgen_plain_ms_per_step_per_piece']:10.4f}  ({figures['rollgen_plain_pieces_per_s']} pieces/s)"
    )
    print(
        f"  rollgen, {args.pieces} x {args.steps}, XLA:                  "
        f"{figures['rollgen_xla_ms_per_step_per_piece']:10.4f}  ({figures['rollgen_xla_pieces_per_s']} pieces/s)"
    )
    print(
        f"  rollgen, {args.pieces} x {args.steps}, default sampling:     {default_ms:10.4f}  "
        f"({figures['rollgen_default_pieces_per_s']} pieces/s)"
    )
    print(f"  article / rollgen (default sampling): x{figures['ratio_article_to_rollgen']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
