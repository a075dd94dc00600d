"""The version of kmlc, read by setup.py and recorded in every export."""

__version__ = "0.1.0"
