"""Distillation: datasets, teachers, verified ETD data, student training (needs the `train` extra)."""
