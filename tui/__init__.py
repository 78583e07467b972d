"""The Textual math tutor, built on `runtime`."""
