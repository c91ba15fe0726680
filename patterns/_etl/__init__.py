"""Implementation of ``patterns.etl`` (public names live in ``patterns/etl.py``)."""
