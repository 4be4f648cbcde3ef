"""kmock's Kubernetes API emulator on loopback, with the dask-kubernetes
resources declared, and a kubeconfig that points kr8s (and so KubeCluster) at it.

The emulator stores objects as a real API server would and answers create,
get, list, patch and delete; it runs no controller, so nothing acts on a
``DaskCluster``: no pods start.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import yaml

DASK_RESOURCES = {"daskclusters": "DaskCluster", "daskworkergroups": "DaskWorkerGroup", "daskjobs": "DaskJob",
                  "daskautoscalers": "DaskAutoscaler"}
VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


class Emulator:
    """A running emulator: ``url``, ``kubeconfig`` (a file), ``objects()`` (what it holds now)."""

    def __init__(self, handler, url: str, loop):
        self.handler, self.url, self.loop = handler, url, loop
        self.kubeconfig = None

    def objects(self) -> dict[tuple[str, str, str], dict]:
        """``(plural, namespace, name) -> object`` of every object not deleted."""
        found = {}
        for key in list(self.handler.objects.keys()):
            resource, namespace, name = key
            obj = self.handler.objects[key]
            if not obj.deleted:
                found[(resource.plural, namespace, name)] = dict(obj.raw)
        return found


@contextlib.contextmanager
def running_emulator(tmp_path, namespace: str = "jobs"):
    import kmock
    from kmock._internal.apps import Server

    ready, box = threading.Event(), {}

    async def serve():
        async with kmock.KubernetesEmulator() as handler, Server(handler) as server:
            # kr8s asks for /version/ (with the slash) as a real API server answers it
            handler["get /version/"] << {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}
            for plural, kind in DASK_RESOURCES.items():
                handler.resources[f"kubernetes.dask.org/v1/{plural}"] = kmock.ResourceInfo(
                    kind=kind, namespaced=True, verbs=VERBS,
                    subresources={"scale"} if plural in ("daskclusters", "daskworkergroups") else set())
            stop = asyncio.Event()
            box.update(emulator=Emulator(handler, str(server.url).rstrip("/"), asyncio.get_running_loop()),
                       stop=stop)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="kube-emulator", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the Kubernetes API emulator did not start")
    emulator = box["emulator"]
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "emulator", "preferences": {},
              "clusters": [{"name": "emulator", "cluster": {"server": emulator.url}}],
              "users": [{"name": "tester", "user": {"token": "not-checked"}}],
              "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester",
                                                            "namespace": namespace}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    emulator.kubeconfig = str(path)
    try:
        yield emulator
    finally:
        emulator.loop.call_soon_threadsafe(box["stop"].set)
        thread.join(10)
