"""FAT2019 (Freesound Audio Tagging 2019): audio -> features -> folds -> transforms/pipeline ->
models/losses -> train -> infer -> score; its Competition is competition.py. Commands: python -m
src.cv / src.predict / src.blend / src.folds / src.score. See docs/fat2019.md."""
