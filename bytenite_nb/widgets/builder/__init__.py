"""The job builder: a form for every part of a job, in stock ipywidgets.

Tabs for the source (a URL with a listing of what it matches and a preview
of the first file), the partitioner, the app, the assembler, the destination,
the job's config and the cluster it runs on. Partitioner, app and assembler
params get forms generated from each component's JSON Schema; an app object
gets a form from its runtime's spec schema. Buttons validate, plan (chunk
count, sizes, first chunks), run (the job runs in the background; a progress
widget appears), show the equivalent Python code, and save the job file.

Read it in this order: ``sections`` (what every tab has), ``locations``
(Source, Destination), ``components`` (Partitioner, Assembler), ``app``,
``settings`` (Config, Cluster), ``actions`` (the buttons), ``codegen``
(Show code), and ``job_builder``, which puts them together.

>>> from bytenite_nb import Job
>>> builder = JobBuilder(Job(source="in.txt", app="identity", destination="out/"))
>>> builder.sections["App"].registered.value = "noop"
>>> builder.job.app
'noop'
"""

from .actions import PLANNED_CHUNKS_SHOWN, plan_html
from .app import JSON_APP_KIND, OTHER_APP_KINDS, app_functions, runtime_kind
from .codegen import job_code
from .job_builder import JobBuilder
from .locations import LISTED_FILES

__all__ = ["JSON_APP_KIND", "JobBuilder", "LISTED_FILES", "OTHER_APP_KINDS", "PLANNED_CHUNKS_SHOWN", "app_functions",
           "job_code", "plan_html", "runtime_kind"]
