"""Test videos Chromium can play: VP8 WebM made with OpenCV (see shoplink.web.demo_media for why)."""

from __future__ import annotations

from shoplink.web.demo_media import make_webm

__all__ = ["make_webm"]
