"""Notebook widgets: build jobs and watch them run.

>>> # from bytenite_nb.widgets import JobBuilder
>>> # builder = JobBuilder(job); builder            # edit, validate, plan, run
>>> # builder.job.run()
"""

from .builder import JobBuilder, job_code
from .forms import SchemaForm
from .preview import preview_widget, result_widget
from .progress import JobProgress, ProgressState

__all__ = ["JobBuilder", "JobProgress", "ProgressState", "SchemaForm", "job_code", "preview_widget",
           "result_widget"]
