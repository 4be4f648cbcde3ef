"""Jobs whose workers share no disk with the client (bytenite_nb/engine/travel.py).

The workers here are real ``dask worker`` processes. To share no disk with the
client on one machine, each runs in a mount namespace of its own
(``unshare --mount``) where an empty tmpfs covers pytest's whole temporary
folder (the client's job folders, code, job store and staging), with a
``HOME``, ``TMPDIR``, ``BYTENITE_NB_HOME`` and working folder of its own
elsewhere. Source, staging and destination are on moto's S3 server. Another
worker advertises an address of another host (192.0.2.1, a documentation
range), one reports another bytenite-nb version (a dist-info on its path), and
Gateway jobs run on a real dask-gateway-server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid

import dask
import pytest

import bytenite_nb as bn
from bytenite_nb.engine.travel import (_installed, code_to_ship, fit_data, local_top_level, other_hosts,
                                       staging_beside)
from bytenite_nb.exceptions import JobFailed, JobValidationError, VersionMismatch
from bytenite_nb.store import default_store

from .conftest import missing
from .faults_helpers import REPO, DaskProcesses, check_destination, free_port, process_env
from .test_gateway import gateway_server, gateway_settings, running_clusters  # noqa: F401 (a fixture)

NOT_HERE = "192.0.2.1"  # TEST-NET-1: never an address of this machine


def lines(n: int) -> bytes:
    return "".join(f"word {i:03d}\n" for i in range(n)).encode()


def listing(fs, prefix: str) -> dict[str, bytes]:
    fs.invalidate_cache()
    return {key[len(prefix):].lstrip("/"): fs.cat_file(key) for key in fs.find(prefix)}


def make_package(folder, monkeypatch) -> str:
    """A package only this process has (on its ``sys.path``): ``<name>.shout:shout``
    upper-cases a chunk and ends each line with the mark kept in its data file."""
    name = f"travelling_{uuid.uuid4().hex[:8]}"
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mark.txt").write_text("!")  # a data file: the package travels as a folder
    (package / "shout.py").write_text(textwrap.dedent("""
        import os

        MARK = open(os.path.join(os.path.dirname(__file__), "mark.txt")).read()

        def shout(chunk_path, results_dir, params):
            text = open(chunk_path).read()
            return "".join(line.upper() + MARK + "\\n" for line in text.splitlines())
    """))
    monkeypatch.syspath_prepend(str(folder))
    return name


def shouting_job(s3, package: str, n_lines: int, per_chunk: int, out: str, **kwargs) -> tuple[bn.Job, bytes]:
    """A job of the package's app on ``n_lines`` lines put in S3, to ``s3://<bucket>/<out>/``; and those lines."""
    fs, bucket = s3
    data = lines(n_lines)
    fs.pipe_file(f"{bucket}/in/words.txt", data)
    job = bn.Job(source=f"s3://{bucket}/in/words.txt", partitioner="split-lines", app=f"{package}.shout:shout",
                 assembler="concat", destination=f"s3://{bucket}/{out}/",
                 params={"partitioner": {"lines_per_chunk": per_chunk}}, **kwargs)
    return job, data


def shouted(data: bytes) -> bytes:
    return b"".join(line.upper() + b"!\n" for line in data.splitlines())


# -- workers that see none of the client's files -----------------------------------------------


def hide_command(hidden: str, workdir: str) -> list[str]:
    """Run a command in a mount namespace where ``hidden`` is an empty tmpfs, from ``workdir``."""
    script = 'mount -t tmpfs tmpfs "$0" && cd "$1" && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, hidden, workdir]


def can_hide(folder: str) -> str | None:
    """Why folders cannot be hidden from a process here (None: they can)."""
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    probe = subprocess.run([*hide_command(folder, "/"), "sh", "-c", f'test -z "$(ls -A {folder})"'],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"cannot make a mount namespace here (unshare --mount: {probe.stderr.strip()[:200]})"
    return None


class ApartWorkers(DaskProcesses):
    """A scheduler, and workers that see none of pytest's temporary folder."""

    def __init__(self, folder, hidden: str):
        super().__init__(os.path.join(folder, "logs"))
        self.root = folder
        self.hidden = hidden
        self.worker_roots: dict[str, str] = {}

    def start_apart_worker(self, name: str) -> None:
        root = os.path.join(self.root, name)
        dirs = {d: os.path.join(root, d) for d in ("home", "tmp", "bnb-home", "cwd", "dask")}
        for d in dirs.values():
            os.makedirs(d)
        env = process_env(HOME=dirs["home"], TMPDIR=dirs["tmp"], BYTENITE_NB_HOME=dirs["bnb-home"])
        env.pop("BYTENITE_NB_STAGING", None)
        self.worker_roots[name] = root
        self._start([*hide_command(self.hidden, dirs["cwd"]), sys.executable, "-m", "dask", "worker",
                     self.address, "--nthreads", "1", "--name", name, "--no-dashboard",
                     "--local-directory", dirs["dask"]], f"worker-{name}", env)


@pytest.fixture(scope="module")
def apart(tmp_path_factory, s3_server):
    hidden = str(tmp_path_factory.getbasetemp())
    why = can_hide(hidden)
    if why:
        missing(why)
    root = tempfile.mkdtemp(prefix="bnb-apart-")  # outside what is hidden
    cluster = ApartWorkers(root, hidden)
    try:
        cluster.start_scheduler()
        for name in ("apart-1", "apart-2"):
            cluster.start_apart_worker(name)
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def no_shared_disk():
    """Workers of this machine, yet in namespaces of their own: they share no disk with the client."""
    with dask.config.set({"bytenite-nb.shared-disk": False}):
        yield


def test_a_job_runs_on_workers_that_share_no_disk_with_it(apart, no_shared_disk, s3, tmp_path, monkeypatch,
                                                          bnb_home):
    fs, bucket = s3
    package = make_package(tmp_path / "code", monkeypatch)
    # Beside the code: secrets in dot files and folders, a link to a file outside the package, one inside it
    folder = tmp_path / "code" / package
    (folder / ".env").write_text("AWS_SECRET_ACCESS_KEY=never-shipped\n")
    (folder / ".aws").mkdir()
    (folder / ".aws" / "credentials").write_text("[default]\n")
    (tmp_path / "outside.txt").write_text("a file of this machine only")
    (folder / "outside.txt").symlink_to(tmp_path / "outside.txt")
    (folder / "mark-again.txt").symlink_to(folder / "mark.txt")
    job, data = shouting_job(s3, package, 20, 5, "out", config={"staging": f"s3://{bucket}/staging"})
    client = apart.client()
    try:
        result = job.run(client=client)
        # Each worker imported the package from the copy shipped into its own local directory.
        where = client.run(lambda: sys.modules[f"{package}.shout"].__file__)
        unpacked = client.run(lambda: sorted(os.listdir(os.path.dirname(sys.modules[f"{package}.shout"].__file__))))
        names = {addr: info["name"] for addr, info in client.scheduler_info(n_workers=-1)["workers"].items()}
    finally:
        client.close()
    check_destination(listing(fs, f"{bucket}/out"), {"output.txt": shouted(data)}, result.job_id, 4)
    assert where, "no worker ran the app"
    for address, path in where.items():
        assert path.startswith(os.path.join(apart.worker_roots[names[address]], "dask")), path
    for names in unpacked.values():
        assert [n for n in names if n != "__pycache__"] == ["__init__.py", "mark-again.txt", "mark.txt", "shout.py"]
    shipped = default_store().last_event(result.job_id, "code-shipped")["data"]
    assert shipped == {"modules": [package], "left-out": [f"{package}/.aws/: a dot name", f"{package}/.env: a dot name",
                                                          f"{package}/outside.txt: a link to outside the package"]}
    # Nothing of the job on this machine's disk, nothing left in staging.
    assert not (bnb_home / "staging").exists()
    assert not fs.exists(f"{bucket}/staging/{result.job_id}")


def test_a_notebook_function_and_a_module_beside_the_job_travel(apart, s3, tmp_path):
    """A client process whose app is a function of its ``__main__`` (as in a notebook),
    then ``helper.py:loud`` beside its job, then a ``__main__`` function calling, through
    another, a module of its folder that imports a second one: all reach workers that
    cannot see them."""
    fs, bucket = s3
    data = lines(6)
    fs.pipe_file(f"{bucket}/in/words.txt", data)
    folder = tmp_path / "notebook"
    folder.mkdir()
    (folder / "helper.py").write_text("def loud(chunk_path, results_dir, params):\n"
                                      "    return open(chunk_path).read().upper()\n")
    (folder / "punct.py").write_text("BANG = '!'\n")
    (folder / "textutils.py").write_text("import punct\n\ndef shout(text):\n    return text.upper() + punct.BANG\n")
    script = folder / "client.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        import bytenite_nb as bn
        from textutils import shout  # a module of the notebook's folder, which the workers lack

        def reverse(chunk_path, results_dir, params):
            return open(chunk_path).read()[::-1]

        def louder(text):  # the notebook's own helper, between the app and the local module
            return shout(text)

        def shouting(chunk_path, results_dir, params):
            return louder(open(chunk_path).read())

        results = {{}}
        for name, app in (("by-value", reverse), ("beside", "helper.py:loud"), ("with-helper", shouting)):
            job = bn.Job(source="s3://{bucket}/in/words.txt", partitioner="split-lines", app=app,
                         assembler="concat", destination=f"s3://{bucket}/" + name + "/",
                         params={{"partitioner": {{"lines_per_chunk": 3}}}},
                         config={{"staging": "s3://{bucket}/staging"}}, base_dir=sys.argv[1])
            results[name] = job.run(scheduler=sys.argv[2]).job_id
        print(json.dumps(results))
    """))
    env = process_env(BYTENITE_NB_HOME=str(tmp_path / "client-home"), DASK_BYTENITE_NB__SHARED_DISK="false")
    done = subprocess.run([sys.executable, str(script), str(folder), apart.address], cwd=str(folder), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    chunks = [b"word 000\nword 001\nword 002\n", b"word 003\nword 004\nword 005\n"]
    check_destination(listing(fs, f"{bucket}/by-value"), {"output.txt": b"".join(c[::-1] for c in chunks)},
                      ids["by-value"], 2)
    check_destination(listing(fs, f"{bucket}/beside"), {"output.txt": data.upper()}, ids["beside"], 2)
    check_destination(listing(fs, f"{bucket}/with-helper"), {"output.txt": b"".join(c.upper() + b"!" for c in chunks)},
                      ids["with-helper"], 2)


def refused(cluster: DaskProcesses, job: bn.Job) -> JobValidationError:
    """The error submitting ``job`` to ``cluster`` raises (it must); planning it
    (a preview) is refused the same way."""
    client = cluster.client()
    try:
        with pytest.raises(JobValidationError) as planning:
            job.plan(client=client)
        with pytest.raises(JobValidationError) as caught:
            job.submit(client=client)
    finally:
        client.close()
    assert str(planning.value) == str(caught.value)
    return caught.value


def test_local_folders_are_refused_before_any_work(apart, no_shared_disk, tmp_path, bnb_home):
    (tmp_path / "in.txt").write_text("a\nb\n")
    job = bn.Job(source="in.txt", partitioner="split-lines", app="identity", assembler="concat",
                 destination="out/", base_dir=str(tmp_path))
    refusal = refused(apart, job)
    assert refusal.fields == ["config.staging", "dataSource", "dataDestination"]
    message = str(refusal)
    assert "Set config.staging (or the bytenite-nb.staging setting) to a URL every worker reaches" in message
    assert "bytenite-nb.shared-disk is false" in message
    assert default_store().list_jobs() == []  # nothing recorded, nothing run
    assert not (tmp_path / "out").exists() and not (bnb_home / "staging").exists()
    # The command says the same, as an error of the job file, without a traceback.
    job.save(tmp_path / "job.json")
    done = subprocess.run([sys.executable, "-m", "bytenite_nb.cli", "run", str(tmp_path / "job.json"),
                           "--cluster", apart.address], env=process_env(DASK_BYTENITE_NB__SHARED_DISK="false"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    for field in ("config.staging", "dataSource", "dataDestination"):
        assert f"{field}: " in done.stderr
    assert not (tmp_path / "out").exists()


# -- a worker on another host ----------------------------------------------------------------


def test_hosts_of_this_machine_are_told_from_others():
    import socket

    assert other_hosts([f"tcp://{socket.gethostname()}:1", "tcp://127.0.0.2:1", "inproc://x/1/2"]) == []
    assert other_hosts([f"tcp://{NOT_HERE}:8786", "tcp://127.0.0.1:1", f"tls://{NOT_HERE}:9"]) == [NOT_HERE]
    assert staging_beside("s3://bucket/jobs/out/") == "s3://bucket/jobs/.bytenite-nb-staging"
    assert staging_beside("file:///data/out") is None and staging_beside("memory://out") is None


@pytest.fixture
def elsewhere_worker(tmp_path):
    """A scheduler, and a real worker that says its address is on another host."""
    cluster = DaskProcesses(tmp_path / "dask")
    try:
        cluster.start_scheduler()
        port = free_port()
        cluster._start([sys.executable, "-m", "dask", "worker", cluster.address, "--nthreads", "1",
                        "--no-dashboard", "--listen-address", f"tcp://127.0.0.1:{port}",
                        "--contact-address", f"tcp://{NOT_HERE}:{port}"], "worker-elsewhere", cluster.env)
        cluster.wait_for_workers(1)
        yield cluster
    finally:
        cluster.close()


def test_local_staging_with_a_worker_on_another_host_fails_before_any_work(elsewhere_worker, s3, tmp_path,
                                                                            bnb_home):
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/in.txt", b"a\nb\n")
    job = bn.Job(source=f"s3://{bucket}/in.txt", app="identity", assembler="concat",
                 destination=f"s3://{bucket}/out/")
    refusal = refused(elsewhere_worker, job)
    assert refusal.fields == ["config.staging"]
    assert f"the workers run elsewhere (host {NOT_HERE})" in str(refusal)
    assert "Set config.staging" in str(refusal)
    assert default_store().list_jobs() == [] and not fs.exists(f"{bucket}/out")


# -- versions ------------------------------------------------------------------------------------


@pytest.fixture
def one_worker(tmp_path):
    """A scheduler and a worker of this environment."""
    cluster = DaskProcesses(tmp_path / "dask")
    try:
        cluster.start_scheduler()
        cluster.start_worker("same")
        cluster.wait_for_workers(1)
        yield cluster
    finally:
        cluster.close()


def test_a_worker_with_another_version_fails_the_job_before_any_work(one_worker, tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\n")
    job = bn.Job(source="in.txt", partitioner="split-lines", app="identity", assembler="concat",
                 destination="out/", base_dir=str(tmp_path))
    client = one_worker.client()
    try:
        assert job.run(client=client).ok  # the same versions everywhere
        # A worker joins whose environment reports bytenite-nb 9.9.9: a dist-info of that
        # version first on its path (as an older or newer install there would be).
        shim = tmp_path / "other-install" / "bytenite_nb-9.9.9.dist-info"
        shim.mkdir(parents=True)
        (shim / "METADATA").write_text("Metadata-Version: 2.1\nName: bytenite-nb\nVersion: 9.9.9\n")
        one_worker.start_worker("other", PYTHONPATH=f"{shim.parent}{os.pathsep}{REPO}")
        client.wait_for_workers(2, timeout=300)
        shutil.rmtree(tmp_path / "out")
        other = next(addr for addr, w in client.scheduler_info(n_workers=-1)["workers"].items()
                     if w["name"] == "other")
        with pytest.raises(JobFailed) as caught:
            job.run(client=client)
    finally:
        client.close()
    assert isinstance(caught.value.__cause__, VersionMismatch)
    message = str(caught.value)
    assert f"bytenite-nb 9.9.9 on worker {other} ({bn.__version__} here)" in message
    assert "Install the same versions of bytenite-nb, dask, distributed, cloudpickle" in message
    assert message.count(" on worker ") == 1  # the worker of this environment matches
    record = default_store().list_jobs()[0]  # the latest
    assert record["state"] == "FAILED" and "9.9.9" in record["error"]
    assert default_store().chunks(record["id"]) == []  # never planned
    assert not (tmp_path / "out").exists()


# -- Gateway and Kubernetes clusters: their workers are always elsewhere --------------------------


def test_a_kubernetes_job_stages_next_to_an_object_store_destination(s3):
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/in.txt", b"a\n")

    def fitted(destination=f"s3://{bucket}/team/out/", **config):
        spec = bn.Job(source=f"s3://{bucket}/in.txt", app="identity", destination=destination,
                      config=config).resolve()
        return fit_data(spec, ["a kubernetes cluster"], cluster_kind="kubernetes")

    assert fitted().staging_url == f"s3://{bucket}/team/.bytenite-nb-staging"
    assert fitted(staging=f"s3://{bucket}/mine").staging_url == f"s3://{bucket}/mine"  # a chosen one is kept
    assert fitted(destination=f"s3://{bucket}/out").staging_url == f"s3://{bucket}/.bytenite-nb-staging"
    for root in (f"s3://{bucket}", f"s3://{bucket}/"):  # no place beside a bucket root: not inside it either
        with pytest.raises(JobValidationError) as caught:
            fitted(destination=root)
        assert str(caught.value).startswith(f"invalid job: config.staging: the destination {root} is a bucket root")
        assert "set config.staging" in str(caught.value)
        assert fitted(destination=root, staging=f"s3://{bucket}-staging/jobs").staging_url == \
            f"s3://{bucket}-staging/jobs"
    with dask.config.set({"bytenite-nb.staging": "/data/staging"}):  # chosen, and a folder of this machine
        with pytest.raises(JobValidationError, match="config.staging: /data/staging is a folder of this machine"):
            fitted()
        with dask.config.set({"bytenite-nb.shared-disk": True}):  # every pod mounts it: allowed
            assert fitted().staging_url == "/data/staging"


def test_editable_installs_are_local_code_and_other_installs_are_not(tmp_path, monkeypatch):
    """Two distributions on the path, each giving a top-level module: one installed
    as usual (the workers have it, like any dependency), one editable (its code is a
    folder of this machine, shipped like any local package)."""
    for name, editable in (("plainly_installed", False), ("editably_installed", True)):
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "top_level.txt").write_text(f"{name}\n")
        if editable:
            (info / "direct_url.json").write_text(json.dumps({"url": f"file://{tmp_path}",
                                                              "dir_info": {"editable": True}}))
        (tmp_path / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    _installed.cache_clear()
    try:
        assert local_top_level("plainly_installed") is None
        assert local_top_level("editably_installed.sub") == "editably_installed"
    finally:
        _installed.cache_clear()


def test_a_local_language_detector_is_shipped_with_the_job(tmp_path, monkeypatch):
    name = f"detecting_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("def detect(samples, rate):\n    return [(0, 1, 'en')]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    package = make_package(tmp_path / "code", monkeypatch)
    (tmp_path / "talk.wav").write_bytes(b"")  # never read: only what travels is asked

    def detecting(detector: str):
        return bn.Job(source=str(tmp_path / "talk.wav"), partitioner="audio-language", app=f"{package}.shout:shout",
                      assembler="concat", destination=str(tmp_path / "out"),
                      params={"partitioner": {"detector": detector}}).resolve()

    spec = detecting(f"{name}:detect")
    assert code_to_ship(spec) == {package: str(tmp_path / "code" / package), name: str(tmp_path / f"{name}.py")}
    # an installed detector's module is the workers' own to import: nothing of it is sent
    spec = detecting("math:hypot")
    assert code_to_ship(spec) == {package: str(tmp_path / "code" / package)}


@pytest.fixture
def gateway_user(gateway_server):
    """A user of the test Gateway whose workers are taken, as anywhere, to share no disk with the client."""
    with dask.config.set({**gateway_settings(gateway_server, f"user-{uuid.uuid4().hex[:8]}"),
                          "bytenite-nb.shared-disk": None}):
        yield


def test_a_gateway_job_stages_next_to_its_destination_and_gets_its_code(gateway_user, s3, tmp_path, monkeypatch,
                                                                         bnb_home):
    fs, bucket = s3
    package = make_package(tmp_path / "code", monkeypatch)
    job, data = shouting_job(
        s3, package, 8, 4, "team/out", config={"keepStaging": True, "maxWorkers": 1},
        # The Gateway gives its workers none of this process's environment: the job says where S3 is.
        storage_options={"key": os.environ["AWS_ACCESS_KEY_ID"], "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
                         "client_kwargs": {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}})
    result = job.run(cluster="gateway")
    assert running_clusters() == []
    check_destination(listing(fs, f"{bucket}/team/out"), {"output.txt": shouted(data)}, result.job_id, 2)
    staged = json.loads(fs.cat_file(f"{bucket}/team/.bytenite-nb-staging/{result.job_id}/job.json"))
    assert staged["id"] == result.job_id
    assert not (bnb_home / "staging").exists()
    assert default_store().last_event(result.job_id, "code-shipped")["data"] == {"modules": [package]}


def test_a_gateway_job_with_local_folders_is_refused_before_any_cluster(gateway_user, tmp_path):
    (tmp_path / "in.txt").write_text("a\n")
    job = bn.Job(source="in.txt", app="identity", destination="out/", base_dir=str(tmp_path))
    with pytest.raises(JobValidationError) as caught:
        job.submit(cluster="gateway")
    assert caught.value.fields == ["config.staging", "dataSource", "dataDestination"]
    assert "the workers run elsewhere (a gateway cluster)" in str(caught.value)
    from bytenite_nb import gateway

    gw = gateway.gateway()
    try:
        assert gw.list_clusters(status=["pending", "running", "stopping", "stopped", "failed"]) == []
    finally:
        gw.close()
