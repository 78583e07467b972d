"""Fine-tuning students on ETD data (needs the `train` extra: torch, transformers, peft, accelerate)."""
