"""Stage windows: images -> data/processed/windows/{train,val,test}.npz, split by piece."""

from rollgen import windows
from rollgen.params import load_params


def main() -> None:
    params = load_params("windows")
    windows.run(
        context=params["steps"],
        mode=params["mode"],
        val_fraction=params["val_fraction"],
        test_fraction=params["test_fraction"],
    )


if __name__ == "__main__":
    main()
