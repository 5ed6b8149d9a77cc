"""QR codes of anchor links: OpenCV's encoder, scaled up (nearest neighbour) with a quiet zone.

Blocking (small, but OpenCV): call through `MediaWorkers.run`.
"""

from __future__ import annotations

import cv2
import numpy as np

QUIET_ZONE_MODULES = 4  # the QR specification asks for four light modules around the symbol
DEFAULT_SCALE = 8
MIN_SCALE, MAX_SCALE = 2, 32


class QrError(RuntimeError):
    pass


def _symbol(text: str) -> np.ndarray:
    """The bare symbol, one pixel per module, 0 = dark, 255 = light (no quiet zone)."""
    encoder = cv2.QRCodeEncoder.create()
    image = encoder.encode(text)
    if image is None or image.size == 0:
        raise QrError("the link cannot be encoded as a QR code")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    image = np.where(image < 128, 0, 255).astype(np.uint8)
    # Trim any light border the encoder added, then add exactly the quiet zone we want.
    dark = np.argwhere(image == 0)
    (top, left), (bottom, right) = dark.min(axis=0), dark.max(axis=0)
    return np.ascontiguousarray(image[top:bottom + 1, left:right + 1])


def render_png(text: str, scale: int = DEFAULT_SCALE) -> bytes:
    symbol = _symbol(text)
    size = symbol.shape[0] * scale
    big = cv2.resize(symbol, (size, size), interpolation=cv2.INTER_NEAREST)
    border = QUIET_ZONE_MODULES * scale
    framed = cv2.copyMakeBorder(big, border, border, border, border, cv2.BORDER_CONSTANT, value=255)
    ok, encoded = cv2.imencode(".png", framed)
    if not ok:
        raise QrError("the QR code cannot be encoded as PNG")
    return bytes(encoded.tobytes())


def render_svg(text: str, scale: int = DEFAULT_SCALE) -> bytes:
    """The same symbol as an SVG: one path of unit squares (crisp at any print size), the quiet
    zone included; `scale` sets the width and height it declares (modules x scale pixels)."""
    symbol = _symbol(text)
    modules = symbol.shape[0] + 2 * QUIET_ZONE_MODULES
    runs = []
    for y, line in enumerate(symbol):
        x = 0
        width = line.shape[0]
        while x < width:
            if line[x] == 0:
                start = x
                while x < width and line[x] == 0:
                    x += 1
                runs.append(f"M{start + QUIET_ZONE_MODULES} {y + QUIET_ZONE_MODULES}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    size = modules * scale
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
            f'viewBox="0 0 {modules} {modules}" shape-rendering="crispEdges">'
            f'<rect width="{modules}" height="{modules}" fill="#fff"/>'
            f'<path fill="#000" d="{"".join(runs)}"/></svg>').encode()
