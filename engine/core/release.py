"""The installed distribution's version: what `memalert --version` and the HTTP `Server` say."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("memalert")
except PackageNotFoundError:  # a checkout on sys.path without `pip install -e .`
    VERSION = "0+unknown"
