"""``python tutorials/check_exercises.py [TASK ...] [--solutions]`` is ``minirai check`` (kept for old links)."""
import sys

from minirai.cli import main

if __name__ == "__main__":
    sys.exit(main(["check", *sys.argv[1:]]))
