"""Shared fixtures; also puts tests/ on sys.path so `strategies` and `builders` import."""

from __future__ import annotations
