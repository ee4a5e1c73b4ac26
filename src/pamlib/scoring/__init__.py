"""Scoring: providers, calibrations and the Rasch person-measure engine."""
