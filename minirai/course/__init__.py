"""The classroom: graded exercises, ``minirai check`` for students, ``minirai grade`` for teachers,
``minirai handout`` for what a student gets.

* :mod:`~minirai.course.judge`: what a task is (:class:`Task`, :class:`Call`, :class:`Returned`) and
  the helpers that judge an answer (:func:`compare` and friends); a teacher's own tasks use them.
* :mod:`~minirai.course.tasks`: the course's tasks, compared with minirai's own classes.
* :mod:`~minirai.course.runner` and :mod:`~minirai.course.sandbox`: each submission runs in a fresh
  interpreter with limits; only its functions' outputs come back, as frames that cannot carry code.
* :mod:`~minirai.course.grade`, :mod:`~minirai.course.check`, :mod:`~minirai.course.handout`: the commands.

A teacher's tasks file (``minirai grade --tasks-file MY_TASKS.py``) imports what it needs from here::

    from minirai.course import Call, Task, check_unchanged, compare
"""
from .judge import (Arg, Call, Closure, Failed, Other, Returned, Task, array_of, check_unchanged, check_updated,
                    close, compare, diagnosis, number, parts, task_rng, type_name)

__all__ = ["Arg", "Call", "Closure", "Failed", "Other", "Returned", "Task", "array_of", "check_unchanged",
           "check_updated", "close", "compare", "diagnosis", "number", "parts", "task_rng", "type_name"]
