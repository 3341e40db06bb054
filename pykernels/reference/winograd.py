"""Winograd convolution F(m x m, r x r) in NumPy: the reference beside the
GPU's `algo="winograd"` path (cuda/conv_winograd.cu), step for step.

A stride-1, undilated r x r convolution is cut into output tiles of m x m.
Each tile needs an n x n input tile, n = m + r - 1, and is computed as
    Y = A^T [ sum over c of (G g_c G^T) * (B^T d_c B) ] A
with * elementwise: n*n multiplications per tile and channel pair instead of
m*m*r*r (F(4x4, 5x5): 64 instead of 400). The sum over channels at each of
the n*n positions xi is a matrix product,
    M_xi (K, tiles) = U_xi (K, C) @ V_xi (C, tiles),
which is what the GPU's batched SGEMM runs, one product per xi.

The matrices come from evaluating polynomials at n - 1 points and at
infinity (Cook-Toom / Lavin and Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016): with P(x) = prod_j (x - a_j),
    A^T[i, j] = a_j**i                 (last column: 1 in row m-1, else 0)
    G[j, k]   = a_j**k / P'(a_j)       (last row: 1 at k = r-1)
    B^T[j]    = coefficients of P(x) / (x - a_j)   (last row: of P(x))
computed here exactly in fractions. Points 0, +-1, +-2, +-1/2 keep the
float32 error near 1e-5 of the output's scale for n <= 8.

Backward, in the same transformed space:
    dM = A dY A^T per output tile (dY zero past the output's edge),
    dU_xi (K, C) = dM_xi @ V_xi^T,  dW = G^T dU G;
and dx is itself a Winograd convolution of dy with the weight flipped and its
two channel axes swapped, padding r - 1 - p (so p <= r - 1 is required).
"""

from fractions import Fraction
from functools import lru_cache

import numpy as np

# Interpolation points by tile size n = m + r - 1 (n - 1 finite points, and infinity).
POINTS = {
    4: (0, 1, -1),
    6: (0, 1, -1, 2, -2),
    8: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2)),
}


def _times_linear(poly, root):
    """Coefficients (ascending) of poly(x) * (x - root)."""
    out = [Fraction(0)] * (len(poly) + 1)
    for i, c in enumerate(poly):
        out[i + 1] += c
        out[i] -= root * c
    return out


def _product_of_roots(roots):
    poly = [Fraction(1)]
    for a in roots:
        poly = _times_linear(poly, a)
    return poly


@lru_cache(maxsize=None)
def winograd_matrices(m, r):
    """(A^T (m, n), G (n, r), B^T (n, n)) of F(m, r), exact values as float64."""
    n = m + r - 1
    if n not in POINTS:
        raise ValueError(f"F({m}, {r}) needs tiles of {n}; supported tile sizes: {sorted(POINTS)}")
    points = [Fraction(a) for a in POINTS[n]]
    at = [[a ** i for a in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    g, bt = [], []
    for j, a in enumerate(points):
        others = points[:j] + points[j + 1:]
        derivative = np.prod([a - b for b in others], dtype=object)
        g.append([a ** k / derivative for k in range(r)])
        bt.append(_product_of_roots(others) + [Fraction(0)])
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    bt.append(_product_of_roots(points))
    return tuple(np.array(mat, dtype=np.float64) for mat in (at, g, bt))


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _tile_grid(out_hw, m):
    return tuple(-(-size // m) for size in out_hw)


def transform_weight(weight, m):
    """U (n, n, K, C) = G g G^T for every (k, c) filter g of weight (K, C, r, r)."""
    _, g, _ = winograd_matrices(m, weight.shape[-1])
    g = g.astype(weight.dtype)
    return np.einsum("ia,kcab,jb->ijkc", g, weight, g)


def transform_input(x, m, r, padding, out_hw):
    """V (n, n, C, N*tiles) = B^T d B for every n x n input tile d, tiles in
    row-major order within each image, images one after another."""
    _, _, bt = winograd_matrices(m, r)
    bt = bt.astype(x.dtype)
    n_img, c, h, w = x.shape
    n = m + r - 1
    (th, tw), (ph, pw) = _tile_grid(out_hw, m), padding
    padded = np.zeros((n_img, c, th * m + r - 1, tw * m + r - 1), dtype=x.dtype)
    rows, cols = min(h, padded.shape[2] - ph), min(w, padded.shape[3] - pw)
    padded[:, :, ph:ph + rows, pw:pw + cols] = x[:, :, :rows, :cols]
    rows_idx = (np.arange(th) * m)[:, None] + np.arange(n)
    cols_idx = (np.arange(tw) * m)[:, None] + np.arange(n)
    tiles = padded[:, :, rows_idx[:, None, :, None], cols_idx[None, :, None, :]]
    v = np.einsum("ia,nctsab,jb->ijcnts", bt, tiles, bt)
    return v.reshape(n, n, c, n_img * th * tw)


def output_tiles(dy, m):
    """dy (N, K, OH, OW) as (N, K, th, tw, m, m) tiles, zero past the edge."""
    n_img, k, oh, ow = dy.shape
    th, tw = _tile_grid((oh, ow), m)
    padded = np.zeros((n_img, k, th * m, tw * m), dtype=dy.dtype)
    padded[:, :, :oh, :ow] = dy
    return padded.reshape(n_img, k, th, m, tw, m).transpose(0, 1, 2, 4, 3, 5)


def conv2d(x, weight, bias=None, padding=0, m=4):
    """torch.nn.functional.conv2d(x, weight, bias, stride=1, padding=padding)
    for a square r x r weight, by F(m x m, r x r)."""
    padding = _pair(padding)
    n_img, _, h, w = x.shape
    k, _, r, _ = weight.shape
    out_hw = (h + 2 * padding[0] - r + 1, w + 2 * padding[1] - r + 1)
    at, _, _ = winograd_matrices(m, r)
    u = transform_weight(weight, m)
    v = transform_input(x, m, r, padding, out_hw)
    products = np.einsum("ijkc,ijct->ijkt", u, v)          # one matrix product per xi
    th, tw = _tile_grid(out_hw, m)
    products = products.reshape(m + r - 1, m + r - 1, k, n_img, th, tw)
    tiles = np.einsum("ai,ijknts,bj->nktasb", at.astype(x.dtype), products, at.astype(x.dtype))
    y = tiles.reshape(n_img, k, th * m, tw * m)[:, :, :out_hw[0], :out_hw[1]]
    return y if bias is None else y + bias.reshape(1, k, 1, 1)


def conv2d_backward(dy, x, weight, padding=0, m=4):
    """(dx, dweight, dbias) of conv2d, each by the Winograd route the GPU takes."""
    padding = _pair(padding)
    r = weight.shape[-1]
    if max(padding) > r - 1:
        raise ValueError(f"padding {padding} above {r - 1}: dx would need a negative padding")
    at, g, _ = winograd_matrices(m, r)
    at, g = at.astype(dy.dtype), g.astype(dy.dtype)
    n = m + r - 1
    dm = np.einsum("ai,nktsab,bj->ijknts", at, output_tiles(dy, m), at)
    dm = dm.reshape(n, n, weight.shape[0], -1)
    v = transform_input(x, m, r, padding, dy.shape[2:])
    du = np.einsum("ijkt,ijct->ijkc", dm, v)
    dweight = np.einsum("ia,ijkc,jb->kcab", g, du, g)
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    dx = conv2d(dy, flipped, None, (r - 1 - padding[0], r - 1 - padding[1]), m)
    return dx, dweight, dy.sum(axis=(0, 2, 3))
