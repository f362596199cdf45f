# FAT2019 inference kernel: every fold of the models dataset (found under /kaggle/input by its
# kit-manifest.json), each checked against its stored reference outputs, then the blend of
# src.predict on /kaggle/input/freesound-audio-tagging-2019/test -> /kaggle/working/submission.csv.
from src.ship.runtime import main  # noqa: E402

raise SystemExit(main("freesound", "predict"))
