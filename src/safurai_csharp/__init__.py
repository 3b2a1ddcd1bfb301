"""safurai-csharp: a reproducible DVC + MLflow pipeline for a C#-specialised code LLM."""

__version__ = "0.1.0"
