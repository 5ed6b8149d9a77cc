"""Click and player events from the process to Redis Streams: the buffered writer, its spool."""
