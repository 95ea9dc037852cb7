"""Readers of the kernel's memory accounting: /proc, cgroup v1 and v2, PSI.

Every reader takes its root directory as an argument so tests point it at fake
trees (tests/fixtures/) and a container can point it at a host mount.
`engine.tracker` turns what they read into samples.
"""

from __future__ import annotations
