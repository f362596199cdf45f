"""Quick, Draw! Doodle Recognition: data -> strokes -> pipeline -> models -> train -> infer; its
Competition (competition.py) and commands:

    python -m src.quickdraw.cv --fold 0            # train (demo data unless --data-dir / Kaggle)
    python -m src.quickdraw.blend                  # blend weights chosen on out-of-fold MAP@3
    python -m src.quickdraw.predict                # submissions/quickdraw_submission.csv
    python -m src.quickdraw.score SUBMISSION SOLUTION
    python -m src.quickdraw.study --classes 8,16,32
    python -m src.quickdraw.folds                  # (re)build folds/<dataset>.csv

See docs/quickdraw.md.
"""
