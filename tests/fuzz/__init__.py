"""Bounded fuzz tests (hypothesis) and the replay of past crashes kept in ``corpus/``."""
