"""Delivery of grouped notifications (apprise, console, file): see issue 4 in the tracker."""

from __future__ import annotations
