"""The Python code that makes a job, for Show code: a notebook's own
functions appear by name, secrets never appear, and running the code gives
back the same job.
"""

from __future__ import annotations

import os
import pprint
from typing import Any

from ...job import Job, component_spec


def _literal(value: Any, namespace: dict) -> str:
    """Python source for a value of a job: a name for a notebook's own objects."""
    if callable(value) and not isinstance(value, str):
        name = getattr(value, "__name__", None)
        if name and namespace.get(name) is value:
            return name
        return repr(component_spec(value))
    return pprint.pformat(value, indent=1, width=88, sort_dicts=False)


def job_arguments(job: Job) -> list[tuple[str, Any]]:
    """The arguments of ``bn.Job(...)`` that make ``job``, in the order a reader expects
    (what is unset or empty is left out; secrets in storage options too).

    >>> job_arguments(Job(source="in.txt", app="identity", config={"maxTaskRetries": 0}))
    [('source', 'in.txt'), ('app', 'identity'), ('config', {'maxTaskRetries': 0})]
    """
    from ...redact import drop_secrets

    args = []
    for key, value in (("source", job.source), ("partitioner", job.partitioner), ("app", job.app),
                       ("assembler", job.assembler), ("destination", job.destination)):
        if value is not None:
            args.append((key, value.to_spec() if hasattr(value, "to_spec") and not callable(value) else value))
    params = {k: v for k, v in job.params.items() if v}
    # Relative paths resolve against base_dir, which is the kernel's folder unless said otherwise.
    base_dir = job.base_dir if job.base_dir and job.base_dir != os.getcwd() else None
    for key, value in (("params", params), ("config", job.user_config), ("name", job.name), ("id", job.id),
                       ("description", job.description), ("template_id", job.template_id),
                       ("base_dir", base_dir), ("storage_options", drop_secrets(job.storage_options)),
                       ("extra", job.extra)):
        if value:
            args.append((key, value))
    return args


def job_code(job: Job, namespace: dict | None = None, run_kwargs: dict | None = None) -> str:
    """Python code that builds ``job`` (and starts it, given ``run_kwargs``); the
    functions of ``namespace`` (a notebook's) appear by their names.

    >>> print(job_code(Job(source="in.txt", app="identity", destination="out/"), run_kwargs={"workers": 2}))
    import bytenite_nb as bn
    <BLANKLINE>
    job = bn.Job(
        source='in.txt',
        app='identity',
        destination='out/',
    )
    handle = job.submit(workers=2)
    handle
    """
    lines = ["import bytenite_nb as bn", "", "job = bn.Job("]
    for key, value in job_arguments(job):
        text = _literal(value, namespace or {}).replace("\n", "\n    ")
        lines.append(f"    {key}={text},")
    lines.append(")")
    if run_kwargs is not None:
        call = ", ".join(f"{k}={'client' if k == 'client' else repr(v)}" for k, v in run_kwargs.items())
        lines += [f"handle = job.submit({call})", "handle"]
    return "\n".join(lines)


def job_summary(job: Job) -> str:
    """One line that says what the job does, where widgets do not render.

    >>> job_summary(Job(source="in.txt", app="identity", destination="out/", name="copy"))
    'copy: in.txt -> passthrough -> identity -> passthrough -> out/'
    """
    spec = job.to_dict()
    return (f"{spec.get('name') or 'job'}: {spec.get('dataSource')} -> {spec.get('partitioner', 'passthrough')} -> "
            f"{spec.get('app')} -> {spec.get('assembler', 'passthrough')} -> {spec.get('dataDestination')}")
