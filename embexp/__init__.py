"""embexp: a research harness for fine-tuning text-embedding bi-encoders for retrieval."""

__version__ = "0.1.0"
