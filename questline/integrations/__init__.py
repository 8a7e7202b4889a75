"""Adapters that expose Questline's environments to other RL libraries (TRL, gymnasium, verifiers)."""
