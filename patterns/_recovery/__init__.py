"""Implementation of ``patterns.error_recovery``: pure policy cores, thin drivers, cluster
actors. Import the public names from ``patterns.error_recovery``."""
