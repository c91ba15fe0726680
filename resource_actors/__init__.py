"""Pooled external resources (databases, files, HTTP services) hosted by Ray actors."""
