"""Stage windows: images -> data/processed/windows/{train,val,test}.npz and splits.csv, split by groups of pieces."""

from rollgen.data import windows
from rollgen.errors import report_errors
from rollgen.params import load_params


def main() -> None:
    params = load_params()
    windows.run(
        context=params.windows.steps,
        mode=params.windows.mode,
        val_fraction=params.windows.val_fraction,
        test_fraction=params.windows.test_fraction,
        split=params.windows.split,
        chunk_steps=params.images.chunk_steps,
        steps_per_quarter=params.images.steps_per_quarter,
    )


if __name__ == "__main__":
    report_errors(main, "windows")
