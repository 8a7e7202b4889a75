"""Questline's environments in other trainers and toolkits (TRL, gymnasium, verifiers)."""
