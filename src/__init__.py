"""Competition kit for Freesound Audio Tagging 2019 and Quick, Draw!

The tree follows the data flow:
  kit/        the competition-agnostic spine: a Competition description (kit/competition.py) and
              the one path every competition goes through: folds file -> fold runner (cv) ->
              trusted runs -> blend -> prediction -> checked submission; metrics, locks, atomic
              writes, config <-> CLI <-> JSON, tf.distribute, tf.data batches, progress
  fat2019/    the FAT2019 wing: audio -> features -> folds -> transforms/pipeline -> models/losses
              -> train -> infer, and its Competition (fat2019/competition.py)
  quickdraw/  the Quick Draw wing, same roles (strokes instead of audio/features), and its commands
  ship/       shipping to Kaggle: client (the kaggle CLI), kernels (dataset, build, push, status,
              output, submit), runtime (what a built kernel runs)
  cv, predict, blend, folds, score, kernels: FAT2019's and shipping's commands (python -m src.X)
"""
__version__ = "0.3.0"
