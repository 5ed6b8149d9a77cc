"""The player's funnel events: view, impression and progress, from /v1/player.js to the streams."""
