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
        self.operator = None

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
def running_emulator(tmp_path, namespace: str = "jobs", operator: bool = False):
    """The emulator, and with ``operator`` a :class:`StandInOperator` acting on it."""
    import kmock
    from kmock._internal.apps import Server

    ready, box = threading.Event(), {}

    async def serve():
        async with kmock.KubernetesEmulator() as handler, Server(handler) as server:
            # kr8s asks for /version/ (with the slash) as a real API server answers it
            handler["get /version/"] << {"major": "1", "minor": "30", "gitVersion": "v1.30.0"}
            for plural, kind in DASK_RESOURCES.items():
                handler.resources[f"kubernetes.dask.org/v1/{plural}"] = kmock.ResourceInfo(
                    kind=kind, singular=kind.lower(), namespaced=True, verbs=VERBS,
                    subresources={"scale"} if plural in ("daskclusters", "daskworkergroups") else set())
            stop = asyncio.Event()
            box.update(emulator=Emulator(handler, str(server.url).rstrip("/"), asyncio.get_running_loop()),
                       stop=stop)
            if operator:
                box["operator"] = box["emulator"].operator = StandInOperator(box["emulator"])
                acting = asyncio.get_running_loop().create_task(box["operator"].run())
            ready.set()
            await stop.wait()
            if operator:
                acting.cancel()
                box["operator"].stop_all()

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


class StandInOperator:
    """Plays the dask-kubernetes operator's part for the emulator, on this machine:
    for a ``DaskCluster`` it runs the scheduler's container args (``dask scheduler
    ...``) as a local process, reports a running scheduler pod and a service that
    reaches it on loopback, and runs each worker group's args (``dask worker
    ...``) with the group's environment, as many as its replicas, following
    scale and delete. Images are not pulled: commands run in this environment.
    Only the dashboard ports change (pods each have their own network; here
    they share one)."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.processes: dict[tuple[str, str], list] = {}  # (cluster, group) -> processes; group "" = scheduler
        self.schedulers: dict[str, str] = {}  # cluster -> address
        self.namespaces: dict[str, str] = {}  # cluster -> its namespace

    async def run(self):
        while True:
            try:
                self.step()
            except Exception as exc:  # keep acting on later changes; the test sees what is missing
                print(f"stand-in operator: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.1)

    def step(self):
        import socket

        objects = self.emulator.objects()
        clusters = {name: obj for (plural, ns, name), obj in objects.items() if plural == "daskclusters"}
        for name, obj in clusters.items():
            if name in self.schedulers:
                continue
            ns = obj["metadata"].get("namespace") or "jobs"
            ports = []
            for _ in range(2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    ports.append(s.getsockname()[1])
            port, dashboard = ports
            (container,) = obj["spec"]["scheduler"]["spec"]["containers"]
            argv = self._argv(container["args"]) + ["--port", str(port), "--dashboard-address", f"127.0.0.1:{dashboard}"]
            self.processes[(name, "")] = [self._start(argv, container, {})]
            self.schedulers[name], self.namespaces[name] = f"tcp://127.0.0.1:{port}", ns
            self._wait_for_port(port)
            handler = self.emulator.handler
            handler.objects["kubernetes.dask.org/v1/daskclusters", ns, name].patch({"status": {"phase": "Running"}})
            labels = {"dask.org/cluster-name": name, "dask.org/component": "scheduler"}
            handler.objects["v1/pods", ns, f"{name}-scheduler"] = {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{name}-scheduler", "namespace": ns,
                                                              "labels": labels},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"},
                                                              {"type": "ContainersReady", "status": "True"}]}}
            service = obj["spec"]["scheduler"]["service"]
            by_name = {"tcp-comm": port, "http-dashboard": dashboard}
            handler.objects["v1/services", ns, f"{name}-scheduler"] = {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-scheduler", "namespace": ns},
                "spec": {**service, "type": "LoadBalancer",
                         "ports": [{**p, "port": by_name[p["name"]]} for p in service["ports"]]},
                "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}
        groups = {(name, "default"): obj["spec"]["worker"] for name, obj in clusters.items()}
        for (plural, ns, name), obj in objects.items():
            if plural == "daskworkergroups" and obj["spec"]["cluster"] in clusters:
                cluster = obj["spec"]["cluster"]
                groups[(cluster, name.removeprefix(f"{cluster}-"))] = obj["spec"]["worker"]
        for key, worker in groups.items():
            running = self.processes.setdefault(key, [])
            running[:] = [p for p in running if p.poll() is None]
            want = int(worker.get("replicas") or 0)
            (container,) = worker["spec"]["containers"]
            while len(running) < want:
                argv = [a.replace("$(DASK_WORKER_NAME)", f"{key[0]}-{key[1]}-{len(running)}")
                        for a in self._argv(container["args"])]
                at = argv.index("--dashboard-address")
                argv[at + 1] = "127.0.0.1:0"
                running.append(self._start(argv, container, {"DASK_SCHEDULER_ADDRESS": self.schedulers[key[0]]}))
            while len(running) > want:
                self._stop(running.pop())
        for key in [k for k in self.processes if k[1] and k not in groups or not k[1] and k[0] not in clusters]:
            for process in self.processes.pop(key):
                self._stop(process)
            if not key[1]:  # the cluster is gone: so are its scheduler's pod and service
                self.schedulers.pop(key[0], None)
                ns = self.namespaces.pop(key[0])
                for plural in ("v1/pods", "v1/services"):
                    self.emulator.handler.objects[plural, ns, f"{key[0]}-scheduler"].delete()

    @staticmethod
    def _argv(args: list[str]) -> list[str]:
        import sys

        assert args[0] == "dask", args  # what the generated specs start
        return [sys.executable, "-m", "dask", *args[1:]]

    @staticmethod
    def _start(argv, container, extra):
        import os
        import subprocess

        env = dict(os.environ)
        env.update({e["name"]: e["value"] for e in container.get("env") or []})
        env.pop("EXTRA_PIP_PACKAGES", None)  # the image's start script would install them; this environment has them
        env.update(extra)
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)

    @staticmethod
    def _wait_for_port(port):
        import socket
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            time.sleep(0.1)
        raise TimeoutError(f"no scheduler on port {port}")

    @staticmethod
    def _stop(process):
        process.terminate()
        try:
            process.wait(10)
        except Exception:
            process.kill()

    def stop_all(self):
        for key in list(self.processes):
            for process in self.processes.pop(key):
                self._stop(process)
