"""How jobs run, without changing what they compute (a module of its own: the command reads it without
loading the training stack)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunOptions:
    """How jobs run, without changing what they compute: training checkpoints, trackers and job leases."""

    checkpoint_every: float = 300.0  # seconds between resumable training checkpoints; 0 = every update
    trackers: list[str] = field(default_factory=list)
    lease_ttl: float = 60.0  # seconds after its last renewal that a dead worker's job lease expires


DEFAULT_OPTIONS = RunOptions()
