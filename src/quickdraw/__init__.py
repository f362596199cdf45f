"""Quick, Draw! Doodle Recognition: data -> strokes/rasters -> models -> cv -> predict -> score; study.

    python -m src.quickdraw.cv --fold 0            # train (demo data unless --data-dir / Kaggle)
    python -m src.quickdraw.predict                # submissions/quickdraw_submission.csv
    python -m src.quickdraw.score SUBMISSION SOLUTION
    python -m src.quickdraw.study --classes 8,16,32

See docs/quickdraw.md.
"""
