"""The 2D engines this project ships. Adding one: a module with its class, and one line here."""
from __future__ import annotations

from actors.engines import Registry
from actors.stylize2d.diffusers_engine import DiffusersStylizer
from actors.stylize2d.offline import OfflineStylizer

STYLIZERS = Registry("2D engine", (OfflineStylizer, DiffusersStylizer))
