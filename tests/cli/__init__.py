"""Tests of the command line, through click and as real processes."""
