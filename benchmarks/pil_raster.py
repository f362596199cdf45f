"""PIL's ImageDraw rasteriser, one drawing at a time: the usual way, kept to compare the kit's
vectorised numpy rasteriser against (benchmarks) and to check they agree (tests)."""
from __future__ import annotations

import numpy as np

from src.quickdraw.strokes import MAX_COORD, Ink, stroke_colour


def rasterize_pil(ink: Ink, size: int = 64, line_width: int = 2, time_colour: bool = False,
                  pad: int = 0) -> np.ndarray:
    """(N, size, size) uint8, drawn like strokes.rasterize."""
    from PIL import Image, ImageDraw

    n = len(ink)
    out = np.zeros((n, size, size), np.uint8)
    s = (size - 1 - 2 * pad) / MAX_COORD
    p = (ink.xy.astype(np.float32) * s + pad).tolist()
    sl = ink.stroke_len.tolist()
    pi = si = 0
    for i, ns in enumerate(ink.n_strokes.tolist()):
        im = Image.new("L", (size, size))
        dr = ImageDraw.Draw(im)
        for k in range(ns):
            m = sl[si]
            pts = [tuple(q) for q in p[pi:pi + m]]
            col = int(stroke_colour(np.array(k))) if time_colour else 255
            if m == 1:
                dr.point(pts, fill=col)
            else:
                dr.line(pts, fill=col, width=line_width)
            pi += m
            si += 1
        out[i] = np.asarray(im)
    return out
