"""Figures and the Markdown/HTML report of a reproduce run."""

from .build import build_report

__all__ = ["build_report"]
