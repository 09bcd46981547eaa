"""Evaluation against ground truth: the metrics (`metrics`), the PAN protocol (`pan`), TDGAN re-rendering
(`tdgan`) and the baselines the models are compared with (`baselines`).

Imports `ganedit.data` and the inference side (editor, rerender), never `ganedit.train`: an evaluation
must not depend on how a model was trained.
"""
