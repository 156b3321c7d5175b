"""Questions: the canonical schema, benchmark loaders and the paper's splits."""

from .schema import Option, Question, read_questions, write_questions

__all__ = ["Option", "Question", "read_questions", "write_questions"]
