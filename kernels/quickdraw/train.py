# Quick, Draw! training kernel, for users without a GPU: src.quickdraw.cv --fold all with the flags
# given at build time (KIT_BUILD["train_args"]), then src.quickdraw.predict; the runs stay in
# /kaggle/working/work/ (the kernel's output).
from src.ship.runtime import main  # noqa: E402

raise SystemExit(main("quickdraw", "train", KIT_BUILD))  # noqa: F821  (defined by the bootstrap above)
