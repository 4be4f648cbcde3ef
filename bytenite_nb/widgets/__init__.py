"""Notebook widgets: build jobs and watch them run.

In a notebook, ``JobBuilder(job)`` shows the job as a form to edit, check,
plan and run; ``builder.job`` is the job as edited; a job's handle shows as
a live :class:`JobProgress`.

>>> import bytenite_nb as bn
>>> builder = JobBuilder(bn.Job(source="in.txt", app="identity", destination="out/"))
>>> builder.partitioner.value = "split-lines"
>>> builder.job.to_dict()["partitioner"]
'split-lines'
"""

from .builder import JobBuilder, job_code
from .forms import SchemaForm
from .preview import preview_widget, result_widget
from .progress import JobProgress, ProgressState

__all__ = ["JobBuilder", "JobProgress", "ProgressState", "SchemaForm", "job_code", "preview_widget",
           "result_widget"]
