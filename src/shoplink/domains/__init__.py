"""Shop domains: who may claim a name, how a shop proves it owns one, and the states in between."""
