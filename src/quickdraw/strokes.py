"""Drawings as ragged point arrays: parsing, stroke-3/stroke-5 sequences, rasters, augmentation.

Everything here is numpy and vectorised over a whole batch of drawings: an `Ink` holds the
points of N drawings back to back, so one call converts, rasterises or augments them all.

Coordinates live in Kaggle's simplified space (0-255, drawings aligned to the top-left corner
and scaled so their longer side spans 255) until the very last step.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np

MAX_COORD = 255


@dataclass
class Ink:
    """N drawings: `xy` (P, 2) points of all strokes of all drawings in order,
    `stroke_len` (S,) points per stroke, `n_strokes` (N,) strokes per drawing."""

    xy: np.ndarray
    stroke_len: np.ndarray
    n_strokes: np.ndarray

    def __len__(self) -> int:
        return len(self.n_strokes)

    @property
    def stroke_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_strokes)]).astype(np.int64)

    @property
    def n_points(self) -> np.ndarray:
        """Points per drawing."""
        so = self.stroke_offsets
        cs = np.concatenate([[0], np.cumsum(self.stroke_len, dtype=np.int64)])
        return cs[so[1:]] - cs[so[:-1]]

    @property
    def point_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_points)]).astype(np.int64)

    def point_drawing(self) -> np.ndarray:
        """Index of the drawing each point belongs to."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.n_points)

    def point_stroke(self) -> np.ndarray:
        """Index (global) of the stroke each point belongs to."""
        return np.repeat(np.arange(len(self.stroke_len), dtype=np.int64), self.stroke_len)

    def take(self, idx) -> "Ink":
        """The drawings `idx` (any order, repeats allowed) as a new Ink."""
        idx = np.asarray(idx, dtype=np.int64)
        so = self.stroke_offsets
        st = ragged_index(so, idx)
        po = self.point_offsets
        pt = ragged_index(po, idx)
        return Ink(self.xy[pt], self.stroke_len[st], self.n_strokes[idx])

    def drawing(self, i: int) -> list:
        """Drawing i back in Kaggle's JSON structure (for tests and debugging)."""
        one = self.take([i])
        out, p = [], 0
        for n in one.stroke_len:
            pts = one.xy[p:p + n]
            out.append([pts[:, 0].tolist(), pts[:, 1].tolist()])
            p += n
        return out

    @staticmethod
    def concat(parts: list["Ink"]) -> "Ink":
        if not parts:
            return empty_ink()
        return Ink(np.concatenate([p.xy for p in parts]),
                   np.concatenate([p.stroke_len for p in parts]),
                   np.concatenate([p.n_strokes for p in parts]))


def empty_ink(dtype=np.uint8) -> Ink:
    return Ink(np.zeros((0, 2), dtype), np.zeros(0, np.int32), np.zeros(0, np.int32))


def ragged_index(offsets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Element indices of segments `idx` of a ragged array with `offsets` (len n+1), in order."""
    starts = offsets[idx]
    lens = offsets[idx + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    excl = np.cumsum(lens) - lens
    return np.arange(total, dtype=np.int64) + np.repeat(starts - excl, lens)


# ---------------------------------------------------------------- parsing and validation

BAD_JSON = "not valid JSON"
NO_STROKES = "no strokes"
NOT_LIST = "not a list of strokes"
MALFORMED = "malformed stroke (not a pair of x and y lists of numbers)"
UNEQUAL = "strokes with unequal x/y lengths"
OUT_OF_RANGE = "coordinates outside 0-255"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


# NaN/Infinity are not JSON; one decoder made once (json.loads(s, **kw) would build one per call)
_decode = json.JSONDecoder(parse_constant=_reject_constant).decode


def _check_numbers(d: list) -> bool:
    for a, b in d:
        for v in a:
            if type(v) not in (int, float):
                return False
        for v in b:
            if type(v) not in (int, float):
                return False
    return True


def parse_drawings(strings) -> tuple[Ink, np.ndarray, dict[int, str]]:
    """Parse Kaggle `drawing` strings into one Ink of the valid drawings.

    Returns (ink, valid, bad): `valid` is a bool mask over the inputs (ink holds the valid ones,
    in order) and `bad` maps the index of each invalid input to the reason.
    """
    strings = list(strings)
    n = len(strings)
    xs: list = []
    ys: list = []
    slen: list = []
    nst: list = []
    good: list = []
    bad: dict[int, str] = {}
    loads = _decode
    for i, s in enumerate(strings):
        try:
            d = loads(s)
        except (TypeError, ValueError):
            bad[i] = BAD_JSON
            continue
        if type(d) is not list:
            bad[i] = NOT_LIST
            continue
        if not d:
            bad[i] = NO_STROKES
            continue
        try:
            lx = [len(a) for a, b in d]
            ly = [len(b) for a, b in d]
        except (TypeError, ValueError):
            bad[i] = MALFORMED
            continue
        if lx != ly:
            bad[i] = UNEQUAL
            continue
        if not any(lx):
            bad[i] = NO_STROKES
            continue
        k = 0
        for (a, b), m in zip(d, lx):
            if m:
                xs.extend(a)
                ys.extend(b)
                slen.append(m)
                k += 1
        nst.append(k)
        good.append(i)
    slen_a = np.asarray(slen, dtype=np.int32)
    nst_a = np.asarray(nst, dtype=np.int32)
    try:
        xa = np.asarray(xs)
        ya = np.asarray(ys)
        numeric = xa.dtype.kind in "iuf" and ya.dtype.kind in "iuf"
    except (ValueError, TypeError, OverflowError):      # ragged nesting, huge ints
        numeric = False
    if len(xs) and not numeric:
        # rare: some coordinate is not a number (a string, a list, null, a bool ...): find who
        keep = []
        tmp = Ink(np.zeros((len(xs), 2), np.uint8), slen_a, nst_a)
        for j, i in enumerate(good):
            if _check_numbers(json.loads(strings[i])):
                keep.append(j)
            else:
                bad[i] = MALFORMED
        pidx = ragged_index(tmp.point_offsets, np.asarray(keep, np.int64))
        sidx = ragged_index(tmp.stroke_offsets, np.asarray(keep, np.int64))
        xa = np.asarray([xs[p] for p in pidx], dtype=np.float64)
        ya = np.asarray([ys[p] for p in pidx], dtype=np.float64)
        slen_a, nst_a = slen_a[sidx], nst_a[keep]
        good = [good[j] for j in keep]
    xy = np.stack([xa, ya], axis=1) if len(xa) else np.zeros((0, 2))
    ink = Ink(xy, slen_a, nst_a)
    # range check, vectorised over all points
    out = ~((xy >= 0) & (xy <= MAX_COORD)).all(axis=1)     # NaN counts as out of range
    if out.any():
        bad_d = np.unique(ink.point_drawing()[out])
        for j in bad_d:
            bad[good[j]] = OUT_OF_RANGE
        keep = np.setdiff1d(np.arange(len(good)), bad_d)
        ink = ink.take(keep)
        good = [good[j] for j in keep]
    ink.xy = np.floor(ink.xy + 0.5).astype(np.uint8) if ink.xy.dtype.kind == "f" else ink.xy.astype(np.uint8)
    valid = np.zeros(n, bool)
    valid[good] = True
    return ink, valid, dict(sorted(bad.items()))


def summarize_bad(bad: dict[int, str], keys, what: str, limit: int = 5) -> str | None:
    """One warning line for the invalid drawings (counts per reason, first few key_ids)."""
    if not bad:
        return None

    counts = Counter(bad.values())
    reasons = ", ".join(f"{r}: {c}" for r, c in sorted(counts.items()))
    first = [str(keys[i]) for i in sorted(bad)[:limit]]
    more = f" (and {len(bad) - limit} more)" if len(bad) > limit else ""
    return f"{len(bad)} {what} with a bad drawing ({reasons}); key_ids {', '.join(first)}{more}"


# ---------------------------------------------------------------- sequences

def to_stroke3(ink: Ink, max_len: int = 100, stroke5: bool = False) -> np.ndarray:
    """(N, max_len, 3) float32: per point (dx, dy, pen_lifted) with dx, dy in units of 255.

    Point i's offset is from point i-1 of the same drawing; the first point's is from (0, 0),
    so the start position is kept. pen_lifted is 1 on the last point of each stroke. Points that
    repeat the previous one inside a stroke (dx = dy = 0, pen down) carry nothing and are
    dropped, so an all-zero row only ever means padding: `Masking(0.0)` is exact. Longer
    drawings are truncated to their first `max_len` points; shorter ones are zero-padded.

    stroke5=True gives (N, max_len, 5): (dx, dy, p1 pen down, p2 pen lifted, p3 end of drawing),
    Sketch-RNN style; p3 marks the last point kept, padding stays all zero.
    """
    n = len(ink)
    feats = 5 if stroke5 else 3
    out = np.zeros((n, max_len, feats), np.float32)
    if n == 0 or len(ink.xy) == 0:
        return out
    xy = ink.xy.astype(np.float32)
    po = ink.point_offsets
    pid = ink.point_drawing()
    prev = np.empty_like(xy)
    prev[1:] = xy[:-1]
    prev[po[:-1][ink.n_points > 0]] = 0.0
    d = (xy - prev) / MAX_COORD
    lift = np.zeros(len(xy), np.float32)
    lift[np.cumsum(ink.stroke_len) - 1] = 1.0
    keep = (d[:, 0] != 0) | (d[:, 1] != 0) | (lift > 0)
    ck = np.cumsum(keep)
    before = np.concatenate([[0], ck])[po[:-1]]            # kept points before each drawing
    rank = ck - 1 - before[pid]
    sel = keep & (rank < max_len)
    rows, cols = pid[sel], rank[sel]
    out[rows, cols, 0:2] = d[sel]
    if not stroke5:
        out[rows, cols, 2] = lift[sel]
        return out
    out[rows, cols, 2] = 1.0 - lift[sel]
    out[rows, cols, 3] = lift[sel]
    n_kept = np.minimum(np.bincount(pid[keep], minlength=n), max_len)
    has = np.nonzero(n_kept)[0]
    out[has, n_kept[has] - 1, 2:5] = (0.0, 0.0, 1.0)
    return out


# ---------------------------------------------------------------- rasters

def stroke_colour(k: np.ndarray) -> np.ndarray:
    """Grey level of the k-th stroke of a drawing when time-coloured: 255, 240, ... down to 75."""
    return (255 - 15 * np.minimum(k, 12)).astype(np.uint8)


def rasterize(ink: Ink, size: int = 64, line_width: int = 2, time_colour: bool = False,
              pad: int = 0) -> np.ndarray:
    """(N, size, size) uint8 images, strokes white (255) on black.

    A point (x, y) lands on pixel (floor(x*s + pad + 0.5), same for y), s = (size-1-2*pad)/255;
    each segment is drawn DDA-style with max(|dx|,|dy|) steps; a line of width w covers a w x w
    square brush from -((w-1)//2) to +w//2 around each sample (clipped at the border).
    time_colour: the k-th stroke is drawn with grey `stroke_colour(k)` (earlier strokes brighter;
    where strokes overlap, the brighter wins).
    """
    n = len(ink)
    img = np.zeros(n * size * size, np.uint8)
    if n == 0 or len(ink.xy) == 0:
        return img.reshape(n, size, size)
    s = (size - 1 - 2 * pad) / MAX_COORD
    p = ink.xy.astype(np.float32) * s + pad
    pid = ink.point_drawing()
    sid = ink.point_stroke()
    last = np.zeros(len(p), bool)
    last[np.cumsum(ink.stroke_len) - 1] = True
    # segments: from every point that is not the last of its stroke to the next point
    a = np.nonzero(~last)[0]
    p0, p1 = p[a], p[a + 1]
    dv = p1 - p0
    steps = np.ceil(np.abs(dv).max(axis=1)).astype(np.int64)
    cnt = steps + 1
    seg = np.repeat(np.arange(len(a)), cnt)
    k = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    t = (k / np.maximum(steps, 1)[seg]).astype(np.float32)[:, None]
    pts = p0[seg] + t * dv[seg]
    owner = a[seg]
    # single-point strokes are dots
    first = np.zeros(len(p), bool)
    first[np.cumsum(ink.stroke_len) - ink.stroke_len] = True
    dots = np.nonzero(first & last)[0]
    pts = np.concatenate([pts, p[dots]])
    owner = np.concatenate([owner, dots])
    pix = np.floor(pts + 0.5).astype(np.int64)
    d_of = pid[owner]
    if time_colour:
        so = ink.stroke_offsets
        val = stroke_colour(sid[owner] - so[:-1][d_of])
    lo = -((line_width - 1) // 2)
    base = d_of * (size * size)
    for oy in range(lo, lo + line_width):
        yy = np.clip(pix[:, 1] + oy, 0, size - 1) * size
        for ox in range(lo, lo + line_width):
            flat = base + yy + np.clip(pix[:, 0] + ox, 0, size - 1)
            if time_colour:
                np.maximum.at(img, flat, val)
            else:
                img[flat] = 255
    return img.reshape(n, size, size)


# ---------------------------------------------------------------- augmentation

def augment(ink: Ink, rng: np.random.Generator, rotate: float = 15.0, scale: float = 0.15,
            shear: float = 0.2, jitter: float = 1.5, dropout: float = 0.1) -> Ink:
    """A randomly distorted copy, one draw of parameters per drawing, vectorised over the batch.

    Per drawing: rotation by U(-rotate, rotate) degrees, independent x and y scaling by
    1 + U(-scale, scale), shear U(-shear, shear), Gaussian jitter of every point (sigma `jitter`
    in 0-255 units), and dropout of interior points of strokes (prob `dropout`; stroke ends are
    kept). The result is fitted back to Kaggle's normalisation (top-left at 0, longer side 255)
    and rounded to integers, as the test drawings are.
    """
    n = len(ink)
    if n == 0 or len(ink.xy) == 0:
        return Ink(ink.xy.astype(np.float32), ink.stroke_len.copy(), ink.n_strokes.copy())
    xy = ink.xy.astype(np.float32)
    stroke_len = ink.stroke_len
    if dropout > 0:
        first = np.zeros(len(xy), bool)
        first[np.cumsum(stroke_len) - stroke_len] = True
        last = np.zeros(len(xy), bool)
        last[np.cumsum(stroke_len) - 1] = True
        keep = first | last | (rng.random(len(xy)) >= dropout)
        stroke_len = np.bincount(ink.point_stroke()[keep], minlength=len(stroke_len)).astype(np.int32)
        xy = xy[keep]
    out = Ink(xy, stroke_len, ink.n_strokes.copy())
    pid = out.point_drawing()
    th = np.deg2rad(rng.uniform(-rotate, rotate, n))
    sx = 1 + rng.uniform(-scale, scale, n)
    sy = 1 + rng.uniform(-scale, scale, n)
    sh = rng.uniform(-shear, shear, n)
    c, s_ = np.cos(th), np.sin(th)
    # M = R(theta) @ Shear(sh) @ diag(sx, sy)
    m00, m01 = c * sx, (c * sh - s_) * sy
    m10, m11 = s_ * sx, (s_ * sh + c) * sy
    x = xy[:, 0] - 127.5
    y = xy[:, 1] - 127.5
    g = pid
    nx = m00[g] * x + m01[g] * y
    ny = m10[g] * x + m11[g] * y
    xy = np.stack([nx, ny], axis=1).astype(np.float32)
    if jitter > 0:
        xy += rng.normal(0, jitter, xy.shape).astype(np.float32)
    out.xy = fit_box(xy, out.point_offsets)
    return out


def mirror(ink: Ink, which: np.ndarray | None = None) -> Ink:
    """Left-right mirror images of the drawings (`which`: a boolean per drawing; default all),
    refitted to Kaggle's normalisation. Most categories look alike both ways, so it doubles
    what ~20 drawings a category show the model (`--aug-flip`) and gives a second view of each
    test drawing (`--tta-flip`)."""
    xy = ink.xy.astype(np.float32)
    if len(xy) == 0:
        return Ink(xy, ink.stroke_len.copy(), ink.n_strokes.copy())
    flip = np.ones(len(ink), bool) if which is None else np.asarray(which, bool)
    xy[flip[ink.point_drawing()], 0] *= -1
    return Ink(fit_box(xy, ink.point_offsets), ink.stroke_len.copy(), ink.n_strokes.copy())


def fit_box(xy: np.ndarray, point_offsets: np.ndarray) -> np.ndarray:
    """Shift each drawing to start at (0, 0) and scale its longer side to 255; round."""
    starts = point_offsets[:-1]
    nonempty = point_offsets[1:] > starts
    st = starts[nonempty]
    lo = np.minimum.reduceat(xy, st, axis=0)
    hi = np.maximum.reduceat(xy, st, axis=0)
    ext = np.maximum((hi - lo).max(axis=1), 1e-6)
    f = MAX_COORD / ext
    counts = (point_offsets[1:] - starts)[nonempty]
    lo_p = np.repeat(lo, counts, axis=0)
    f_p = np.repeat(f, counts)[:, None]
    out = np.floor((xy - lo_p) * f_p + 0.5)
    return np.clip(out, 0, MAX_COORD).astype(np.float32)
