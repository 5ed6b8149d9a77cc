"""Click analytics: the count worker, counters in Redis, roll-ups into PostgreSQL, stats reads."""
