"""Competition kit for Freesound Audio Tagging 2019 and Quick, Draw!

kit/ holds the competition-agnostic machinery (runs, folds files, the fold runner, blending,
metrics, strategies). The audio pipeline, one module per step:
audio -> features -> folds -> transforms/datasets -> models/losses -> training (cv)
-> predictor -> predict (+ blend) -> submission -> score; quickdraw/ the same for doodles;
kernels + kernel_run + kaggle_cli ship both to Kaggle.
"""
__version__ = "0.2.0"
