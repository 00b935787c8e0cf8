"""Generation speed: the article's loop against rollgen's, per generated step, in one run.

    python benchmarks/generate.py [--model models/model.keras] [--article-model article.keras] [--repeats 3]

- article: its loop as published, one `model.predict` per step per piece (batch 1) with vanish_proof, on the
  article's network (`--article-model`, or `rollgen.models.builders.build_article(9)` freshly built: the loop's cost is
  Keras' per-call overhead, the same for any weights), `--article-pieces` x `--article-steps` (it is slow);
- rollgen on the same network, primers and vanish_proof: the frames must agree with the article's;
- rollgen with `--model` (the default: what `dvc repro` trained) and params.yaml's sampling: one piece of
  `--steps` and of 4 x `--steps` steps (a sequence model carries its state, so a step of the long piece costs
  what one of the short piece does), and `--pieces` pieces at once. A first run on a freshly wrapped model
  includes reading the primer and tracing and compiling the step, as a user pays it; "steady" is a second
  run on the same model, compiled already.
Times are medians of `--repeats` runs, in ms per generated step per piece; ratios are the article's over
rollgen's. Prints a summary, then all figures as one JSON object on the last line.
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
from rollgen.data.archive import load_sequences
from rollgen.generation.generate import generate_pieces, sample_frames
from rollgen.generation.primers import excerpt_primers
from rollgen.models import frame_model
from rollgen.models.builders import build_article, load_model
from rollgen.models.sampling import VanishProofSampler
from rollgen.params import load_params, validate

TARGETS = {"one_piece": 50.0, "many_pieces": 300.0}  # the goals: article / rollgen per step per piece


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


def timed(function, *args) -> tuple[float, object]:
    """Wall seconds `function(*args)` took, and what it gave back."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def median_ms(values: list[float], per: int) -> float:
    """Median of `values` (seconds) in milliseconds per `per` units."""
    return round(1000 * statistics.median(values) / per, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=paths.MODEL, help="a trained .keras model")
    parser.add_argument("--article-model", type=Path, help="the article's network, trained (default: built fresh)")
    parser.add_argument("--windows", type=Path, default=paths.WINDOWS_DIR, help="folder of the archives")
    parser.add_argument("--article-pieces", type=int, default=2)
    parser.add_argument("--article-steps", type=int, default=30)
    parser.add_argument("--pieces", type=int, default=64)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import tensorflow as tf

    model = frame_model.load(args.model)
    article_keras = load_model(args.article_model) if args.article_model else build_article(context=9)
    article = frame_model.wrap(article_keras)
    test = load_sequences("test", args.windows)
    generate_params = load_params("generate")
    primer_steps = generate_params.primer_steps

    primers, positions = excerpt_primers(test, args.article_pieces, article.context, np.random.default_rng(args.seed))
    article_keras.predict(primers[:1], verbose=0)  # Keras builds its predict function on the first call: not timed
    article_times, article_frames = [], None
    for _ in range(args.repeats):
        took, article_frames = timed(
            lambda: np.stack([article_loop(article_keras, primer, args.article_steps) for primer in primers])
        )
        article_times.append(took)

    def rollgen_run(network, count: int, steps: int):
        """`count` pieces of `steps` steps, as `rollgen generate` makes them: params.yaml's sampling, a random
        excerpt of the test pieces before each."""
        fixed = {"temperature": 1.0} if generate_params.temperature == "auto" else {}  # any costs the same
        params = validate("generate", {**generate_params.model_dump(), "pieces": count, "steps": steps,
                                       "seed": args.seed, **fixed})  # fmt: skip
        return generate_pieces(network, params, test, progress=False)

    same_times, same_frames = [], None
    for _ in range(args.repeats):
        took, same_frames = timed(
            lambda: sample_frames(
                article,
                primers,
                positions,
                args.article_steps,
                VanishProofSampler(offset=0.65, growth=1.001),  # article_loop's
                np.random.default_rng(0),
                progress=False,
            )  # fmt: skip
        )
        same_times.append(took)
    agree = float((article_frames == same_frames).mean())

    runs: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # interleaved, so a busy moment of the machine hits every row alike
        for name, count, steps in (
            ("one", 1, args.steps),
            ("one_long", 1, 4 * args.steps),
            ("many", args.pieces, args.steps),
            ("many_long", args.pieces, 4 * args.steps),
        ):
            fresh = frame_model.wrap(model.keras)  # its step traced (and compiled) anew, as a user pays it
            runs.setdefault(name, []).append(timed(rollgen_run, fresh, count, steps)[0])
            runs.setdefault(f"{name}_warm", []).append(timed(rollgen_run, fresh, count, steps)[0])

    def steady(name: str, pieces: int, steps: int) -> float:
        """ms per step per piece of the second run, on a model compiled already."""
        return median_ms(runs[f"{name}_warm"], steps * pieces)

    article_ms = median_ms(article_times, args.article_pieces * args.article_steps)
    one_ms, one_steady = median_ms(runs["one"], args.steps), steady("one", 1, args.steps)
    many_ms, many_steady = median_ms(runs["many"], args.pieces * args.steps), steady("many", args.pieces, args.steps)
    figures = {
        "article_ms_per_step_per_piece": article_ms,
        "rollgen_article_network_ms_per_step_per_piece": median_ms(
            same_times, args.article_pieces * args.article_steps
        ),
        "frames_agree_with_article": agree,
        "one_piece_ms_per_step": one_ms,
        "one_long_piece_ms_per_step": median_ms(runs["one_long"], 4 * args.steps),
        "one_piece_ms_per_step_steady": one_steady,
        "one_long_piece_ms_per_step_steady": steady("one_long", 1, 4 * args.steps),
        "many_pieces_ms_per_step_per_piece": many_ms,
        "many_pieces_ms_per_step_per_piece_steady": many_steady,
        "many_pieces_per_s": round(args.pieces / statistics.median(runs["many"]), 2),
        "ratio_one_piece": round(article_ms / one_steady, 1),
        "ratio_one_piece_with_compile": round(article_ms / one_ms, 1),
        "ratio_many_pieces": round(article_ms / many_steady, 1),
        "ratio_many_pieces_with_compile": round(article_ms / many_ms, 1),
        "targets": TARGETS,
        "model": model.name,
        "xla": model.jit_compile,
        "article_model": article_keras.name,
        "sampling": generate_params.sampling,
        "primer_steps": primer_steps,
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
    network = figures["rollgen_article_network_ms_per_step_per_piece"]
    print(f"ms per generated step per piece (medians of {args.repeats}; {figures['cores']} cores)")
    print(f"  article's loop ({article_keras.name}), model.predict per step, batch 1: {article_ms:9.3f}")
    print(f"  rollgen, the same network and primers (frames agree: {agree:.2%}):   {network:9.3f}")
    rows = (("1 piece", "one", 1, "ratio_one_piece", "one_piece"),
            (f"{args.pieces} pieces", "many", args.pieces, "ratio_many_pieces", "many_pieces"))  # fmt: skip
    for label, name, count, ratio, target in rows:
        first, warm = statistics.median(runs[name]), statistics.median(runs[f"{name}_warm"])
        long_ = statistics.median(runs[f"{name}_long_warm"])
        print(f"  rollgen ({model.name}), {label}: {args.steps} steps in {first:.2f} s compiling, then {warm:.2f} s; "
              f"{4 * args.steps} steps in {long_:.2f} s; steady {steady(name, count, args.steps):.4f} ms, "
              f"x{figures[ratio]} (target x{TARGETS[target]:g})")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
