"""What the demo is made of: the names `shoplink demo` seeds and the demo pages look up."""

from __future__ import annotations

DEMO_SELLER = "Demo Seller"
DEMO_CREATOR = "Demo Creator"
DEMO_SHOP = "Demo Shop"
DEMO_PRODUCTS = (
    ("Trail Runner Sneakers", "89.00"),
    ("Canvas Weekender Bag", "129.50"),
    ("Ceramic Pour-Over Set", "42.00"),
)
DEMO_VIDEO_TITLE = "shoplink demo: spring picks"
