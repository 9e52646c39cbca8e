"""Hypothesis strategies that draw spec-valid event files independently of aerflow."""
