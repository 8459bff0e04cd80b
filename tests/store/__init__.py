"""Tests of the storage engines, on real SQLite files and a real PostgreSQL."""
