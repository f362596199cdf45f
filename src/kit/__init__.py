"""Competition-agnostic machinery shared by FAT2019 and Quick, Draw!

Nothing here imports a competition module: atomic writes, config <-> CLI <-> JSON, errors,
data-folder resolution, locks, tf.distribute strategies, metrics, plots, the fold runner and the
run layout (finding trusted runs, averaging, out-of-fold reports).
"""
