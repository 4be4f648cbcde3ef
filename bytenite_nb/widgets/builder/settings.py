"""The Config and Cluster tabs: how the job runs (timeouts, retries, ... from
the config schema) and where Plan and Run send it.

>>> cluster = ClusterSection()
>>> cluster.mode.value = "local"
>>> cluster.workers.value = 3
>>> cluster.run_kwargs
{'workers': 3}
"""

from __future__ import annotations

import ipywidgets as widgets

from ...job import CONFIG_SCHEMA, Job
from ..forms import SchemaForm
from .sections import Section

#: where a job can run: (label, mode); "client" is offered when the builder was given one
CLUSTER_MODES = (
    ("the current Dask client, or a local cluster", "default"),
    ("a new local cluster", "local"),
    ("a scheduler address, or gateway:NAME (a running Dask Gateway cluster)", "address"),
    ("a new Dask Gateway cluster for the job (Dask config gateway.address)", "gateway"),
    ("this process, no Dask (for debugging)", "sync"),
)


class ConfigSection(Section):
    """The job's config (only what it sets: defaults stay defaults)."""

    title = "Config"
    fields = ("config",)

    def __init__(self, job: Job):
        self.form = SchemaForm(CONFIG_SCHEMA, job.user_config, prefix="config")
        super().__init__([self.form])

    @property
    def value(self) -> dict:
        return self.form.value

    def forms(self) -> dict[str, SchemaForm]:
        return {"config": self.form}


class ClusterSection(Section):
    """Where Plan and Run send the job: ``client`` is a Dask client to offer first."""

    title = "Cluster"

    def __init__(self, client=None):
        self.client = client
        modes = [("the client given to the builder", "client"), *CLUSTER_MODES] if client is not None \
            else list(CLUSTER_MODES)
        self.mode = widgets.Dropdown(options=modes, description="Run on", layout=widgets.Layout(width="520px"))
        self.workers = widgets.IntText(value=2, description="Workers", layout=widgets.Layout(width="200px"))
        self.address = widgets.Text(description="Address", placeholder="tcp://10.0.0.5:8786 or gateway:NAME")
        super().__init__([self.mode, self.workers, self.address])

    @property
    def run_kwargs(self) -> dict:
        """The arguments of ``job.plan`` and ``job.submit``: ``client=``, ``scheduler=``, ``cluster=`` or ``workers=``."""
        mode = self.mode.value
        if mode == "client":
            return {"client": self.client}
        if mode == "local":
            return {"workers": max(1, self.workers.value)}
        if mode == "address":
            return {"scheduler": self.address.value.strip()}
        if mode == "sync":
            return {"scheduler": "sync"}
        if mode == "gateway":
            return {"cluster": "gateway"}
        return {}
