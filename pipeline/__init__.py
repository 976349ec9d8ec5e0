"""Mutual Plans that run themselves over email."""

__version__ = "0.1.0"
