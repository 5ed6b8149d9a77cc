"""Product anchors: a product attached to a video time range or a live session, with a public code."""
