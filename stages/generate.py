"""Stage generate: model + test primers -> generated/NNN.{mid,wav,png} and metrics/generate.json."""

from rollgen import generate
from rollgen.params import load_params


def main() -> None:
    generate.run(load_params("generate"), steps_per_quarter=load_params("images")["steps_per_quarter"])


if __name__ == "__main__":
    main()
