"""Notebook widgets: build jobs and watch them run."""
