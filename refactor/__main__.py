"""``python -m lightify``: the same command line as ``lightify``."""

from lightify.cli import main

if __name__ == "__main__":
    main(prog_name="lightify")
