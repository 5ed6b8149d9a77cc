"""shoplink: shoppable short videos and live streams."""

__version__ = "0.1.0"
