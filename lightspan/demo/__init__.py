"""lightspan demo: the whole loop on one machine."""
