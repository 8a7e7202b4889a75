"""Questline environments and data in other frameworks: gymnasium, TRL, verl, verifiers."""
