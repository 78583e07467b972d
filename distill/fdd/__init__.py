"""Feedback-driven distillation (Zhu et al., arXiv 2411.14698): grow the ETD set where the student
is weak, round after round. `variants` is the offline teacher, `leakage` the test-set overlap check."""
