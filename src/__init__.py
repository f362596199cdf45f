"""Competition kit for Freesound Audio Tagging 2019 and Quick, Draw!

Data flow of the audio pipeline, one module per step:
audio -> features -> folds -> datasets/transforms -> models -> training (cv)
-> predictor -> ensemble -> submission (predict) -> score.
"""
__version__ = "0.1.0"
