"""Objective evaluation: error rates and speech intelligibility checks for generated media."""
