"""Shipping to Kaggle: client (the kaggle CLI), kernels (dataset, build, push, status, output,
submit), runtime (what a built kernel runs). Command: python -m src.kernels; see docs/kaggle.md."""
