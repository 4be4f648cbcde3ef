"""The Config and Cluster tabs: how the job runs (timeouts, retries, ... from
the config schema) and where Plan and Run send it.

>>> cluster = ClusterSection()
>>> cluster.mode.value = "local"
>>> cluster.workers.value = 3
>>> cluster.run_kwargs
{'workers': 3}
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ...exceptions import FieldError
from ...job import CONFIG_SCHEMA, Job
from ..forms import SchemaForm
from .sections import Section

#: where a job can run: (label, mode); "client" is offered when the builder was given one
CLUSTER_MODES = (
    ("the current Dask client, or a local cluster", "default"),
    ("a new local cluster", "local"),
    ("a scheduler address, or gateway:NAME (a running Dask Gateway cluster)", "address"),
    ("a new Dask Gateway cluster for the job (Dask config gateway.address)", "gateway"),
    ("a new Kubernetes cluster for the job (dask-kubernetes operator)", "kubernetes"),
    ("a running Dask Gateway or Kubernetes cluster (gateway:NAME, kubernetes:NAME)", "running"),
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
        # The running clusters, listed when asked for (a Gateway may take a moment to answer).
        self.running = widgets.Dropdown(options=[], description="Cluster", layout=widgets.Layout(width="520px"))
        self.look_again = widgets.Button(description="Look again", icon="refresh",
                                         tooltip="List the running Dask Gateway and Kubernetes clusters again")
        self.look_again.on_click(lambda _button: self.list_running())
        self.running_note = widgets.HTML()
        self.mode.observe(self._mode_changed, names="value")
        super().__init__([self.mode, self.workers, self.address,
                          widgets.HBox([self.running, self.look_again]), self.running_note])

    def _mode_changed(self, change) -> None:
        if change["new"] == "running" and not self.running.options:
            self.list_running()

    def list_running(self) -> list[str]:
        """List the running Gateway and Kubernetes clusters (:func:`bytenite_nb.reachable.list_clusters`)
        into the ``running`` choice, each as the name a job runs on; say why a source cannot be listed."""
        from ...reachable import list_clusters

        listed = list_clusters()
        names = [(f"{c['target']} ({c['workers'] if c['workers'] is not None else '?'} workers, {c['status']})",
                  c["target"]) for c in listed["clusters"] if c["status"] == "running" or c["kind"] == "kubernetes"]
        chosen = self.running.value
        self.running.options = names
        if chosen in {value for _, value in names}:
            self.running.value = chosen
        notes = [html.escape(e["message"]) for e in listed["errors"]]
        if not names and not notes:
            notes.append("No running Dask Gateway or Kubernetes cluster (Dask config gateway.address, or a "
                         "kubeconfig, says where to look).")
        self.running_note.value = "<br>".join(notes)
        return [value for _, value in names]

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
        if mode in ("gateway", "kubernetes"):
            return {"cluster": mode}
        if mode == "running":
            if not self.running.value:
                raise FieldError("cluster", "no running cluster is chosen: press Look again, or choose another "
                                            "place to run")
            return {"cluster": self.running.value}
        return {}
