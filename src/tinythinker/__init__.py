"""tinythinker: distill Recall -> Analyze -> Summarize reasoning into a small student."""

__version__ = "0.1.0"
