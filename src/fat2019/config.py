"""The FAT2019 config: audio features and training, one dataclass, saved beside every run."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..kit.configio import RunConfig, field

COMPETITION = "freesound-audio-tagging-2019"

# Curated clips known to be mislabelled (first five) or silent (last), per the competition forum.
KNOWN_BAD_CLIPS = ["f76181c4.wav", "77b925c2.wav", "6a1f682a.wav", "c7db12aa.wav",
                   "7752cc8a.wav", "1d44b0bd.wav"]

FEATURE_FIELDS = ("sample_rate", "feature", "n_mels", "n_mfcc", "n_fft", "hop_length", "fmin",
                  "fmax", "trim_db", "min_seconds")


@dataclass
class FatConfig(RunConfig):
    # --- audio and features (any change gives a new feature cache key) ---
    sample_rate: int = field(44100, "rate every clip is resampled to (Hz)")
    feature: str = field("logmel", "spectrogram kind", ["logmel", "mfcc"])
    n_mels: int = field(32, "mel bands (32 since 2026-12-07: with --width 24 as good out of fold as the "
                               "earlier default, 64 mels at width 32, for 0.28 of its compute)")
    n_mfcc: int = field(40, "MFCC coefficients when --feature mfcc")
    n_fft: int = field(2560, "FFT window (samples)")
    hop_length: int = field(347, "hop between frames (samples); 347 at 44.1 kHz = 127 frames/s")
    fmin: float = field(20.0, "lowest mel frequency (Hz)")
    fmax: float = field(0.0, "highest mel frequency (Hz); 0 means sample_rate / 2")
    trim_db: float = field(60.0, "leading/trailing parts this many dB below the peak are trimmed; 0 keeps all")
    min_seconds: float = field(1.0, "shorter clips are padded (repeated) to this length")
    crop_frames: int = field(128, "frames per training crop and per prediction window")
    # --- data ---
    data_dir: str | None = field(None, "competition data folder (default: Kaggle input, ./data, else the demo)")
    noisy: str = field("weighted", "use of train_noisy (never validated on): none; all (as curated); weighted "
                               "(--noisy-weight, --noisy-loss); finetune (curated + noisy, then the last "
                               "--finetune-epochs on curated alone)", ["none", "all", "weighted", "finetune"],
                       aliases={"--use-noisy": "weighted"})
    noisy_weight: float = field(0.5, "loss weight of noisy clips relative to curated ones (--noisy weighted)")
    noisy_loss: str = field("bce", "loss on noisy clips (--noisy weighted): bce; lsoft (targets softened "
                                   "towards the model's own scores); bootstrap (soft bootstrapping)",
                            ["bce", "lsoft", "bootstrap"])
    noisy_beta: float = field(0.7, "lsoft/bootstrap: weight of the given labels against the model's scores")
    finetune_epochs: int = field(10, "--noisy finetune: epochs at the end on curated clips only")
    keep_bad_clips: bool = field(False, "keep the known mislabelled/silent curated clips")
    n_folds: int = field(5, "cross-validation folds over train_curated")
    # --- model and training ---
    model: str = field("cnn", "network, or stats: whole-clip log-mel statistics into one logistic regression "
                              "per label (scikit-learn; a blend member, trains in seconds)", ["cnn", "vgg19", "stats"])
    stats_c: float = field(0.1, "--model stats: inverse L2 regularisation of the logistic regressions (0.1: the "
                                "best out-of-fold of 1, 0.1, 0.01 on the real recordings)")
    weights: str = field("", "vgg19 body weights: a .h5/.weights.h5 file, 'imagenet' (download), 'none' "
                             "(random init); default: $VGG19_WEIGHTS, the Keras cache, /kaggle/input/*/")
    init_from: str = field("", "networks: start from a trained fold's weights (its folder, or a run folder: its "
                               "first finished fold; e.g. a run on other recordings): every layer of the same "
                               "shape is copied, a head over other labels starts fresh. Its data must not hold "
                               "these clips (the same dataset on other folds is refused)")
    copied_lr_scale: float = field(1.0, "with --init-from: the copied layers learn at this fraction of --lr, the "
                                        "fresh head at --lr (discriminative fine-tuning); 1 = one rate", absent=1.0)
    vgg_input: str = field("repeat", "vgg19 input channels: the log-mel repeated, or log-mel + delta + "
                                     "delta-delta", ["repeat", "deltas"])
    unfreeze: int = field(0, "vgg19: fine-tune the last N of its 5 conv blocks after the head converged")
    unfreeze_lr: float = field(1e-4, "vgg19: learning rate once blocks are unfrozen")
    width: int = field(24, "channels of the first conv block (doubles per block); 24 at 32 mels is 22.6 "
                           "GFLOP a step, 32 at 64 mels (the earlier default) 80.1; 16 the cheapest")
    blocks: int = field(4, "conv blocks")
    conv: str = field("standard", "cnn: 3x3 convolutions, depthwise-separable ones (a fraction of the compute "
                                  "beyond the first layer), or hybrid: standard in the first block (full "
                                  "resolution), separable after it", ["standard", "separable", "hybrid"])
    stem_stride: int = field(1, "cnn: stride of the first convolution; 2 runs every block on a quarter of the "
                                "positions (a quarter of the compute, the same weights)", [1, 2], absent=1)
    dropout: float = field(0.3, "dropout before the classifier")
    epochs: int = field(80, "maximum epochs (the cosine schedule spans them)")
    steps_per_epoch: int = field(0, "batches per epoch; 0 means one pass over the training clips")
    min_steps: int = field(0, "train at least this many batches (more epochs on small data); 0 = --epochs rules")
    batch_size: int = field(32, "clips per batch (global, over all replicas)")
    lr: float = field(1e-3, "peak learning rate (Adam)")
    lr_schedule: str = field("cosine", "learning-rate schedule", ["cosine", "constant"])
    warmup_epochs: int = field(1, "linear warm-up epochs before the schedule")
    weight_decay: float = field(1e-4, "AdamW weight decay")
    label_smoothing: float = field(0.0, "binary cross-entropy label smoothing")
    mixup_alpha: float = field(0.0, "mixup Beta(alpha, alpha); 0 turns mixup off")
    mix_clips: float = field(0.0, "mix-and-union: the probability that a training crop is mixed with another "
                                  "clip's (mel powers added, targets the union of both labels), as the test's "
                                  "multi-label clips are (--model stats: mixtures of whole clips added beside "
                                  "them); log-mel only; 0 = off")
    mix_gain_db: float = field(6.0, "--mix-clips: the partner clip's level, uniform within +-this many dB")
    spec_augment: bool = field(False, "random time and frequency masks on training crops (off by default: "
                                           "the ablation scored it lower out-of-fold)")
    gain_db: float = field(0.0, "random level shift of each training crop, up to +-this many dB (0 = off)")
    pad: str = field("repeat", "clips shorter than a crop: repeated, or placed at random in silence",
                     ["repeat", "silence"])
    patience: int = field(20, "stop after this many epochs without a better validation lwlrap")
    eval_hop: float = field(1.0, "hop between validation/prediction windows, as a fraction of crop_frames")
    tta: int = field(1, "test-time augmentation: number of shifted window grids averaged")
    window_agg: str = field("meanmax", "a clip's score from its windows' scores: mean, max (short events in long "
                                    "clips), or meanmax (their average)", ["mean", "max", "meanmax"])
    seed: int = field(42, "seed for folds, crops and initialisation")
    workers: int = field(0, "feature-extraction processes; 0 means one per CPU this process may use")
    feature_ram_gb: float = field(2.0, "hold a fold's features (curated + noisy together) in RAM up to this "
                                         "size; beyond, read them from the cache as needed")
    cache_dir: str = field("cache", "root of the feature cache")

    def feature_key(self) -> str:
        """Short hash of everything that changes a feature array, so stale caches are never reused."""
        d = {k: getattr(self, k) for k in FEATURE_FIELDS}
        if d["feature"] != "mfcc":
            d.pop("n_mfcc")
        blob = json.dumps(d, sort_keys=True)
        return f"{self.feature}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"

    @property
    def effective_fmax(self) -> float:
        return self.fmax if self.fmax > 0 else self.sample_rate / 2

    @property
    def n_features(self) -> int:
        return self.n_mfcc if self.feature == "mfcc" else self.n_mels
