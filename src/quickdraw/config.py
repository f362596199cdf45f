"""The one Quick, Draw! config: every field is a CLI flag of cv/predict/study, saved as config.json."""
from __future__ import annotations

from dataclasses import dataclass

from ..kit.configio import RunConfig, field

COMPETITION = "quickdraw-doodle-recognition"
DEMO_DIR = "data/demo-quickdraw"
MODELS = ["lstm", "convlstm", "cnn", "inception"]
SEQUENCE_MODELS = ("lstm", "convlstm")
# Kaggle's layout: train_simplified/<word>.csv, test_simplified.csv, sample_submission.csv
TRAIN_DIR = "train_simplified"
TEST_CSV = "test_simplified.csv"
SAMPLE_CSV = "sample_submission.csv"


def word_to_token(word: str) -> str:
    """Submission spelling: spaces inside a word become underscores."""
    return word.replace(" ", "_")


def token_to_word(token: str) -> str:
    return token.replace("_", " ")


@dataclass
class QDConfig(RunConfig):
    # data
    data_dir: str | None = field(None, "Kaggle layout folder (train_simplified/, test_simplified.csv); "
                                       "default: Kaggle input, ./data/" + COMPETITION + ", else the demo")
    classes: int = field(0, "keep this many categories (fixed seeded choice; 0 = all)")
    per_class: int = field(2000, "read at most this many valid drawings per category (streamed)")
    chunk_size: int = field(20000, "CSV rows read at a time")
    n_folds: int = field(5, "stratified folds (used when the folds file is created)")
    seed: int = field(0, "seed of class choice, folds, model init and augmentation")
    # representation
    model: str = field("cnn", "model", choices=MODELS)
    max_len: int = field(100, "stroke-3 sequences: points kept (truncate/pad)")
    stroke5: bool = field(False, "sequence models: stroke-5 (dx, dy, p1, p2, p3) instead of stroke-3")
    raster_size: int = field(64, "CNNs: raster side in pixels")
    line_width: int = field(2, "CNNs: line width in pixels")
    time_colour: bool = field(True, "CNNs: grey level by stroke order (earlier strokes brighter)")
    # augmentation (training only, fresh every epoch)
    augment: bool = field(True, "augment training drawings on the fly (--no-augment: off)")
    aug_rotate: float = field(15.0, "max rotation, degrees")
    aug_scale: float = field(0.15, "max relative x/y scaling (independent, so aspect changes too)")
    aug_shear: float = field(0.2, "max shear factor")
    aug_jitter: float = field(1.5, "point jitter sigma, in 0-255 units")
    aug_dropout: float = field(0.1, "probability of dropping an interior point of a stroke")
    aug_flip: float = field(0.0, "probability of mirroring a training drawing left-right")
    tta_flip: bool | None = field(None, "score each drawing and its mirror image, averaged (validation and test "
                                        "alike, so out-of-fold scores measure what predict does); default: on "
                                        "for the raster models, off for the sequence models (out of fold on 32 real "
                                        "categories: cnn 0.743 -> 0.755, convlstm 0.499 -> 0.486)", absent=False)
    # model size
    lstm_units: int = field(128, "LSTM units per direction")
    lstm_layers: int = field(2, "stacked LSTM layers")
    bidirectional: bool = field(True, "bidirectional LSTMs")
    cnn_filters: int = field(32, "CNNs: filters of the first block (doubling per block)")
    cnn_blocks: int = field(4, "CNNs: conv blocks (each halves the resolution)")
    dropout: float = field(0.3, "dropout before the classifier")
    init_from: str = field("", "start from a trained fold's weights (its folder, or a run folder: its first "
                               "finished fold; e.g. a run on other categories): every layer of the same shape "
                               "is copied, a classifier over other categories starts fresh. Its data must not "
                               "hold these drawings (the same dataset on other folds is refused)")
    probe_head: bool = field(False, "with --init-from: the fresh classifier starts as a logistic regression "
                                    "fitted on the copied layers' features of the fold's training drawings "
                                    "(linear probing, then fine-tuning), not at random (32 real categories, "
                                    "pretrained on the 313 others, --lr 1e-3: out of fold 0.8273 with it, "
                                    "0.8299 without)", absent=False)
    copied_lr_scale: float = field(1.0, "with --init-from: the copied layers learn at this fraction of --lr, the "
                                        "fresh classifier at --lr (discriminative fine-tuning; 32 real categories, "
                                        "pretrained on the 313 others: --lr 2e-3 with 0.5 scored 0.8336 out of "
                                        "fold, one rate 0.8283 at 2e-3 and 0.8299 at 1e-3); 1 = one rate, "
                                        "kept as the default so that continuing a pretraining (every layer "
                                        "copied) runs at --lr", absent=1.0)
    # training
    epochs: int = field(15, "max epochs (on big data; see --min-steps)")
    min_steps: int = field(600, "train at least this many batches: on small data more epochs (patience "
                                "stretched alike; 32 real categories: 75 epochs, five folds ~39 min on a 2-core "
                                "AMX-BF16 Xeon; 300 scored 0.022 lower out of fold), on the competition's "
                                "millions --epochs rules")
    batch_size: int = field(64, "batch size")
    lr: float = field(2e-3, "peak learning rate (Adam, cosine decay)")
    label_smoothing: float = field(0.1, "label smoothing")
    patience: int = field(6, "early stopping: epochs without a better validation MAP@3")
    threads: int = field(0, "TensorFlow intra/inter-op threads (0 = TensorFlow's choice)")

    @property
    def is_sequence(self) -> bool:
        return self.model in SEQUENCE_MODELS

    @property
    def flips_at_test(self) -> bool:
        """--tta-flip as given, else the model kind's default."""
        return (not self.is_sequence) if self.tta_flip is None else self.tta_flip
