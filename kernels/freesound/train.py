# FAT2019 training kernel, for users without a GPU: src.cv --fold all with the flags given at
# build time (KIT_BUILD["train_args"]) on the competition data, then src.predict; the runs stay in
# /kaggle/working/work/ (the kernel's output) to download and ship with `src.kernels dataset`.
from src.ship.runtime import main  # noqa: E402

raise SystemExit(main("freesound", "train", KIT_BUILD))  # noqa: F821  (defined by the bootstrap above)
