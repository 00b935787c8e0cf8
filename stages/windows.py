"""Stage windows: images -> data/processed/windows/{train,val,test}.npz and splits.csv, split by groups of pieces."""

from rollgen import windows
from rollgen.params import load_params


def main() -> None:
    params = load_params("windows")
    windows.run(
        context=params["steps"],
        mode=params["mode"],
        val_fraction=params["val_fraction"],
        test_fraction=params["test_fraction"],
        split=params["split"],
        chunk_steps=load_params("images")["chunk_steps"],
        steps_per_quarter=load_params("images")["steps_per_quarter"],
    )


if __name__ == "__main__":
    main()
