"""Questline environments and data in other frameworks: TRL, gymnasium, verl, verifiers."""
