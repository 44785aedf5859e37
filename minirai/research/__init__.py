"""Research tools around the engine: the proposal's experiments (``minirai reproduce``), the training
methods by name, declarative studies (``minirai study``) and their reports.

The engine a learner opens (:mod:`minirai.layers`, :mod:`minirai.rai`, ...) does not import these.
"""
