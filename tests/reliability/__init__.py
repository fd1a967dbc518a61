"""Reliability: every bad input ends in exit 2 with one line, on the real command line."""
