"""Stage windows: images -> data/processed/windows/{train,val,test}.npz and splits.csv, split by groups of pieces."""

from rollgen.data import windows
from rollgen.errors import report_errors
from rollgen.params import load_params


def main() -> None:
    params = load_params()
    windows.run(params.windows, params.images)  # the grid the images were drawn on


if __name__ == "__main__":
    report_errors(main, "windows")
