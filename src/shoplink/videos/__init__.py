"""Videos: uploads streamed to disk, probed with OpenCV, scene cuts, thumbnails."""
