"""Experiments built on mmdistill (the library never imports them)."""
