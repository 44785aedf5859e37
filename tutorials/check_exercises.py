"""``python tutorials/check_exercises.py [TASK ...] [--file PATH] [--solutions PATH]`` is ``minirai check``
(kept for old links): it checks ``exercises.py`` in the current folder, or the file given."""
import sys

from minirai.cli import main

if __name__ == "__main__":
    sys.exit(main(["check", *sys.argv[1:]]))
