"""Winograd's minimal filtering F(4x4, 3x3): a 3x3 stride-1 convolution in 4x fewer products.

Derivation, in one dimension first. Four outputs of a 3-tap correlation,
``y[i] = sum_k d[i+k] g[k]`` for i = 0..3, read six inputs d[0..5]. Write the *convolution*
of two polynomials ``g(x) = g0 + g1 x + g2 x^2`` and ``h(x) = h0 + ... + h3 x^3``: their
product ``s(x)`` has six coefficients, and the correlation is its transpose (y = C(g)^T d
where s = C(g) h). A degree-5 polynomial is fixed by its values at five points a_j plus
its leading coefficient (the "point at infinity"), and at each point the product is one
multiplication, ``s(a_j) = g(a_j) h(a_j)``. So the convolution is

    s = Interp [ (Eg g) * (Eh h) ]        (* element-wise, 6 multiplications instead of 12)

with ``Eg``, ``Eh`` evaluating at the points and ``Interp`` Lagrange interpolation; its
transpose is the correlation ``y = A^T [ (G g) * (B^T d) ]`` with ``A^T = Eh^T`` (4x6),
``G = Eg`` (6x3) and ``B^T = Interp^T`` (6x6). :func:`winograd_matrices` builds them from
the points: row j of ``B^T`` holds the coefficients of ``prod_{l != j} (x - a_l)``, row j
of ``G`` is ``a_j^k / prod_{l != j} (a_j - a_l)``, column j of ``A^T`` is ``a_j^i``, and the
last row/column belongs to the point at infinity. In two dimensions the same matrices
act on rows and on columns: a 4x4 output tile comes from a 6x6 input tile ``d``::

    Y = A^T [ (G g G^T) * (B^T d B) ] A

Over channels and filters the element-wise product becomes a sum over channels, that is
36 matrix products, one per position (xi, nu) of the 6x6 tile::

    U[xi,nu]  = (G g G^T)[xi,nu]        (C, F)   filters, transformed once per call
    V[xi,nu]  = (B^T d B)[xi,nu]        (T, C)   input tiles, T tiles of the chunk as rows
    M[xi,nu]  = V[xi,nu] @ U[xi,nu]     (T, F)
    out tiles = A^T M A

Each output costs 36 / 16 = 2.25 multiply-adds per (channel, filter) pair instead of 9.
Every step is linear, so backward runs the transposes in reverse order::

    dM = A dY A^T;  dU = V^T @ dM;  dW = G^T dU G;  dV = dM @ U^T;  dx tiles = B dV B^T

and the overlapping input tiles add their gradients back into the image (as col2im does).

Accuracy. The transforms round, so results differ from the exact sum by more than
im2col's: with the points 0, 1, -1, 1/2, -2 (half the float32 error of the classic
0, +-1, +-2, measured on the benchmark's shapes) the output stays within about 3e-6 of
float64, relative to its largest value.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.polynomial import polynomial

from .conv_geometry import ConvGeometry
from .conv_im2col import Scratch, view_as

OUT_TILE, KERNEL = 4, 3
TILE = OUT_TILE + KERNEL - 1  # 6
POINTS = (0.0, 1.0, -1.0, 0.5, -2.0)


def winograd_matrices(m: int = OUT_TILE, r: int = KERNEL, points=POINTS) -> tuple[np.ndarray, ...]:
    """The matrices ``A^T`` (m, a), ``G`` (a, r), ``B^T`` (a, a) of F(m, r), a = m + r - 1.

    ``points`` are the a - 1 finite interpolation points (distinct); the last row/column
    is the point at infinity. Computed in float64.

    Examples
    --------
    >>> at, g, bt = winograd_matrices(2, 3, (0, 1, -1))   # F(2, 3)
    >>> d, k = np.array([1., 2., 3., 4.]), np.array([1., 0., -1.])
    >>> at @ ((g @ k) * (bt @ d))   # the correlation [1*1 - 3*1, 2*1 - 4*1]
    array([-2., -2.])
    """
    a = m + r - 1
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (a - 1,) or len(set(pts.tolist())) != a - 1:
        raise ValueError(f"winograd_matrices: need {a - 1} distinct points for F({m}, {r}), got {points!r}")
    at, g, bt = np.zeros((m, a)), np.zeros((a, r)), np.zeros((a, a))
    for j, p in enumerate(pts):
        others = np.delete(pts, j)
        at[:, j] = p ** np.arange(m)
        g[j] = p ** np.arange(r) / np.prod(p - others)
        bt[j, : a - 1] = polynomial.polyfromroots(others)  # coefficients, lowest power first
    at[m - 1, a - 1] = g[a - 1, r - 1] = 1.0
    bt[a - 1] = polynomial.polyfromroots(pts)
    return at, g, bt


@cache
def _matrices(dtype) -> tuple[np.ndarray, ...]:
    """(A^T, A, G, B^T, B) of F(4x4, 3x3) in ``dtype``, contiguous."""
    at, g, bt = winograd_matrices()
    return tuple(np.ascontiguousarray(mat, dtype=dtype) for mat in (at, at.T, g, bt, bt.T))


@cache
def _filter_transform(dtype) -> np.ndarray:
    """``G (x) G`` (36, 9), the Kronecker product: ``vec(G g G^T) = (G (x) G) vec(g)`` for a 3x3 ``g``,
    both flattened row by row. One (36, 9) @ (9, F*C) product transforms every filter at once,
    where ``G @ w @ G.T`` would loop over F*C tiny products."""
    _, g, _ = winograd_matrices()
    return np.ascontiguousarray(np.kron(g, g), dtype=dtype)


class Winograd:
    """F(4x4, 3x3) Winograd convolution, channels last, for 3x3 stride-1 undilated layers.

    Kept for backward: the transformed input tiles V of the batch, (36, N, T, C) with
    T = ceil(OH/4) * ceil(OW/4): 2.25x the input, where im2col keeps 9x.
    """

    name = "winograd"

    @staticmethod
    def supports(kernel, stride, dilation) -> bool:
        """Whether a layer with this window can run on this algorithm."""
        return tuple(kernel) == (KERNEL, KERNEL) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)

    def __init__(self, g: ConvGeometry) -> None:
        self.g = g
        self.th, self.tw = math.ceil(g.oh / OUT_TILE), math.ceil(g.ow / OUT_TILE)
        self.t = self.th * self.tw
        # The padded input that the tiles cover: the layer's padding, and zeros to fill the last tiles.
        self.hp, self.wp = OUT_TILE * self.th + KERNEL - 1, OUT_TILE * self.tw + KERNEL - 1

    def kept_shape(self, n: int) -> tuple:
        return (TILE * TILE, n, self.t, self.g.c)

    def kept_chunk(self, kept: np.ndarray, start: int, stop: int) -> np.ndarray:
        return kept[:, start:stop]

    def sample_size(self) -> int:
        """Elements of the arrays one sample needs: input tiles (3 arrays of 36 T C), products
        and output tiles (36 + 24 + 16 + 16 arrays of T F)."""
        return self.t * (3 * TILE * TILE * self.g.c + (TILE * TILE + TILE * OUT_TILE + 2 * OUT_TILE**2) * self.g.f)

    def sample_macs(self) -> int:
        """Multiply-adds of one sample's 36 products per tile, C*F each: a quarter of im2col's for
        full tiles, and far fewer than im2col counts on small maps (a 4x4 map is one tile)."""
        return TILE * TILE * self.t * self.g.c * self.g.f

    def weight_operand(self, weight: np.ndarray) -> np.ndarray:
        """U = G g G^T for every (channel, filter): (36, C, F)."""
        f, c = self.g.f, self.g.c
        # The filters' 9 taps first and (C, F) after: the product is then U itself, (36, C*F), with
        # no transpose of its 4x larger result (10x faster at 32 -> 64 channels, measured).
        taps = weight.reshape(f, c, KERNEL * KERNEL).transpose(2, 1, 0).reshape(KERNEL * KERNEL, c * f)
        return (_filter_transform(weight.dtype) @ taps).reshape(TILE * TILE, c, f)

    def weight_grad(self, total: np.ndarray) -> np.ndarray:
        """dW = G^T dU G, from the (36, C, F) sum of the chunks' dU."""
        f, c = self.g.f, self.g.c
        dw = _filter_transform(total.dtype).T @ total.reshape(TILE * TILE, c * f)  # (9, C*F): the transpose
        return dw.reshape(KERNEL, KERNEL, c, f).transpose(3, 2, 0, 1)

    def _tiles(self, n: int, channels: int) -> tuple:
        return (TILE, TILE, n, self.th, self.tw, channels)

    def _add_tiles(self, dd: np.ndarray, dxp: np.ndarray) -> None:
        """dxp[n, 4i + u, 4j + v] = sum of dd[u, v, n, i, j] over the tiles that overlap there.

        The adjoint of cutting the image into overlapping tiles. Tile (i, j)'s last two
        rows are the first two of tile (i+1, j), so those are added into them first (the
        same for columns); then every pixel comes from exactly one (u < 4, v < 4) entry, or
        from the last tiles' extra rows and columns, and is copied once.
        """
        m, th, tw = OUT_TILE, self.th, self.tw
        extra = TILE - OUT_TILE  # 2
        dd[:, :extra, :, :, 1:] += dd[:, m:, :, :, :-1]  # columns 4..5 of tile j are columns 0..1 of tile j+1
        dd[:extra, :, :, 1:] += dd[m:, :, :, :-1]  # the same for rows
        n, c = dxp.shape[0], dxp.shape[3]
        body = dxp[:, : m * th, : m * tw].reshape(n, th, m, tw, m, c)
        np.copyto(body, dd[:m, :m].transpose(2, 3, 0, 4, 1, 5))
        # The last tile row's rows 4..5, the last tile column's columns 4..5, and their corner.
        np.copyto(
            dxp[:, m * th :, : m * tw].reshape(n, extra, tw, m, c), dd[m:, :m, :, th - 1].transpose(2, 0, 3, 1, 4)
        )
        np.copyto(
            dxp[:, : m * th, m * tw :].reshape(n, th, m, extra, c), dd[:m, m:, :, :, tw - 1].transpose(2, 3, 0, 1, 4)
        )
        np.copyto(dxp[:, m * th :, m * tw :], dd[m:, m:, :, th - 1, tw - 1].transpose(2, 0, 1, 3))

    def columns(self, x, v, scratch: Scratch) -> None:
        """V = B^T d B for every input tile d of the chunk ``x`` (n, C, H, W), into ``v``."""
        g = self.g
        n = len(x)
        (top, _), (left, _) = g.pads
        _, _, _, bt, _ = _matrices(x.dtype)
        xp = scratch("x_pad", (n, self.hp, self.wp, g.c))  # padded, channels last
        xp[:, :top] = 0
        xp[:, top + g.h :] = 0
        xp[:, top : top + g.h, :left] = 0
        xp[:, top : top + g.h, left + g.w :] = 0
        np.copyto(xp[:, top : top + g.h, left : left + g.w], x.transpose(0, 2, 3, 1))
        d = scratch("tiles", self._tiles(n, g.c))
        # Every 6x6 tile of xp, overlapping by 2, as a view: d[u, v, n, i, j] = xp[n, 4i + u, 4j + v]
        s_n, s_h, s_w, s_c = xp.strides
        tiles = as_strided(
            xp, self._tiles(n, g.c), (s_h, s_w, s_n, OUT_TILE * s_h, OUT_TILE * s_w, s_c), writeable=False
        )
        np.copyto(d, tiles)
        half = scratch("half", (TILE, d.size // TILE))
        np.matmul(bt, d.reshape(TILE, -1), out=half)  # B^T d: along the tile's rows
        np.matmul(bt, half.reshape(TILE, TILE, -1), out=view_as(v, (TILE, TILE, -1)))  # ... B: along its columns

    def forward(self, v, u, out, bias, scratch: Scratch) -> None:
        """``out`` (n, F, OH, OW) = A^T (V @ U) A per tile (+ bias)."""
        g = self.g
        n = len(out)
        at, _, _, _, _ = _matrices(out.dtype)
        m = scratch("products", (TILE * TILE, n * self.t, g.f))
        np.matmul(view_as(v, (TILE * TILE, n * self.t, g.c)), u, out=m)  # 36 products (nT, C) @ (C, F)
        half = scratch("out_half", (OUT_TILE, m.size // TILE))
        np.matmul(at, m.reshape(TILE, -1), out=half)
        y = scratch("out_tiles", (OUT_TILE, OUT_TILE, n, self.th, self.tw, g.f))
        np.matmul(at, half.reshape(OUT_TILE, TILE, -1), out=y.reshape(OUT_TILE, OUT_TILE, -1))
        # y[a, b, n, i, j, f] is out[n, f, 4i + a, 4j + b]. In two copies: the pixels into place with
        # the filters still last (moves of F numbers), then one (pixels, F) -> (F, pixels) transpose
        # per sample. One 6-d transpose would move single numbers (2-3x slower, measured).
        exact = (g.oh, g.ow) == (OUT_TILE * self.th, OUT_TILE * self.tw)
        target = out if exact else scratch("out_full", (n, g.f, OUT_TILE * self.th, OUT_TILE * self.tw))
        pixels = scratch("out_pixels", (n, self.th, OUT_TILE, self.tw, OUT_TILE, g.f))
        tiles = y.transpose(2, 3, 0, 4, 1, 5)
        if bias is None:
            np.copyto(pixels, tiles)
        else:
            np.add(tiles, bias, out=pixels)
        np.copyto(target.reshape(n, g.f, -1), pixels.reshape(n, -1, g.f).transpose(0, 2, 1))
        if not exact:
            np.copyto(out, target[:, :, : g.oh, : g.ow])

    def backward(self, v, u, dout, dx, scratch: Scratch) -> np.ndarray:
        """This chunk's dU (36, C, F); and, unless ``dx`` is None, its dx (``v`` is overwritten)."""
        g = self.g
        n = len(dout)
        _, a, _, _, b = _matrices(dout.dtype)
        dy = scratch("out_tiles", (OUT_TILE, OUT_TILE, n, self.th, self.tw, g.f))
        if (g.oh, g.ow) == (OUT_TILE * self.th, OUT_TILE * self.tw):
            full = dout
        else:  # the outputs the last tiles computed past the edge were dropped: zero gradient
            full = scratch("out_full", (n, g.f, OUT_TILE * self.th, OUT_TILE * self.tw))
            full[:, :, g.oh :] = 0
            full[:, :, :, g.ow :] = 0
            full[:, :, : g.oh, : g.ow] = dout
        np.copyto(dy, full.reshape(n, g.f, self.th, OUT_TILE, self.tw, OUT_TILE).transpose(3, 5, 0, 2, 4, 1))
        half = scratch("out_half", (TILE, dy.size // OUT_TILE))
        np.matmul(a, dy.reshape(OUT_TILE, -1), out=half)  # A dY: along the tile's rows
        dm = scratch("products", (TILE * TILE, n * self.t, g.f))
        np.matmul(a, half.reshape(TILE, OUT_TILE, -1), out=dm.reshape(TILE, TILE, -1))  # ... A^T
        v36 = view_as(v, (TILE * TILE, n * self.t, g.c))
        du = np.matmul(v36.transpose(0, 2, 1), dm)  # 36 products (C, nT) @ (nT, F)
        if dx is None:
            return du
        np.matmul(dm, u.transpose(0, 2, 1), out=v36)  # dV over V: its last use was dU
        half = scratch("half", (TILE, TILE, v36.size // (TILE * TILE)))
        np.matmul(b, view_as(v, (TILE, TILE, -1)), out=half)  # dV B^T: along the tile's columns
        dd = scratch("tiles", self._tiles(n, g.c))
        np.matmul(b, half.reshape(TILE, -1), out=dd.reshape(TILE, -1))  # B ...: along its rows
        dxp = scratch("x_pad", (n, self.hp, self.wp, g.c))
        self._add_tiles(dd, dxp)
        (top, _), (left, _) = g.pads
        np.copyto(dx, dxp[:, top : top + g.h, left : left + g.w].transpose(0, 3, 1, 2))
        return du
