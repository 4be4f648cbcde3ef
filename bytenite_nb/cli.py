"""The ``bytenite-nb`` command.

    bytenite-nb run JOB [--id ID] [--cluster local|sync|ADDRESS|gateway[:NAME]|kubernetes[:NAME]] [--workers N] [--force]
    bytenite-nb validate JOB
    bytenite-nb plan JOB
    bytenite-nb components [KIND]
    bytenite-nb jobs [ID]
    bytenite-nb cluster start|stop|status
    bytenite-nb clusters
    bytenite-nb kube spec JOB | kube job NOTEBOOK [-p NAME VALUE ...]

Exit status: 0 on success, 1 when a job fails, 2 for an invalid job or
usage, 130 when interrupted. Errors go to stderr as one paragraph.
"""

from __future__ import annotations

import json
import sys
import time

import click

from . import __version__
from .exceptions import ByteniteNBError, JobFailed, JobValidationError
from .transfer import size_text


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(path: str):
    from .job import Job

    return Job.from_file(path)


class _Group(click.Group):
    """Turns library errors into a one-paragraph message and an exit status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except JobValidationError as exc:
            _fail(str(exc), 2)
        except JobFailed as exc:
            _fail(str(exc), 1)
        except ByteniteNBError as exc:
            _fail(str(exc), 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="bytenite-nb")
def main() -> None:
    """Run ByteNite-style partition -> app -> assemble jobs on Dask."""


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--id", "job_id", help="Job id; the same id again resumes an interrupted run.")
@click.option("--cluster", "cluster_name", help="Where to run: 'local' (a local cluster of this run), 'sync' "
              "(in this process), a scheduler address, 'gateway' (a new Dask Gateway cluster for this job) "
              "'gateway:NAME' (a running Gateway cluster), 'kubernetes' (a dask-kubernetes cluster for this job) "
              "or 'kubernetes:NAME' (a running DaskCluster). Default: the bytenite-nb.cluster setting.")
@click.option("--scheduler", help="The same as --cluster.")
@click.option("--workers", type=click.IntRange(min=1), help="Workers of the local cluster.")
@click.option("--force", is_flag=True, help="Run again even if the job is complete; start over.")
@click.option("--failed", "rerun_failed", is_flag=True,
              help="With --id: run only the chunks the earlier run did not complete, then publish the whole output.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run(job_file, job_id, cluster_name, scheduler, workers, force, rerun_failed, as_json):
    """Run JOB_FILE and wait for it to finish."""
    if rerun_failed and not job_id:
        raise click.UsageError("--failed needs --id: the job whose failed chunks to run again")
    if cluster_name and scheduler and cluster_name != scheduler:
        raise click.BadParameter("give --cluster or --scheduler, not both", param_hint="--cluster")
    _run_and_report(_load(job_file), job_id=job_id, cluster=cluster_name or scheduler, workers=workers, force=force,
                    rerun_failed=rerun_failed, as_json=as_json)


@main.command()
@click.argument("job_id")
@click.option("--failed", "rerun_failed", is_flag=True, help="Run only the chunks that failed or did not run.")
@click.option("--cluster", "--scheduler", "scheduler", help="Where to run, as for run --cluster: 'local', 'sync', "
              "a scheduler address, 'gateway' or 'gateway:NAME'.")
@click.option("--workers", type=click.IntRange(min=1), help="Workers of the local cluster.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def rerun(job_id, rerun_failed, scheduler, workers, as_json):
    """Run job JOB_ID again from its record: with --failed, only the chunks
    that failed (or that minSuccessRatio let it complete without), then the
    whole output is published."""
    from .job import Job
    from .redact import MASK
    from .store import default_store

    if not rerun_failed:
        raise click.UsageError("say what to rerun: --failed (the chunks that did not complete)")
    store = default_store()
    record = store.get_job(job_id)
    if record is None:
        raise click.UsageError(f"no job {job_id!r} in the job store ({store.path})")
    spec = dict(record.get("spec") or {})
    base_dir = spec.pop("baseDir", None)
    spec.pop("id", None)
    if MASK in json.dumps(spec):
        raise click.UsageError(f"job {job_id} was run with credentials, which are never recorded: run its job file "
                               f"again with `bytenite-nb run JOB_FILE --id {job_id} --failed`")
    if record.get("kind", "job") != "job" or not spec:
        raise click.UsageError(f"{job_id} is not a job this command can rerun (a {record.get('kind')} record)")
    job = Job.from_dict(spec, base_dir=base_dir)
    _run_and_report(job, job_id=job_id, cluster=scheduler, workers=workers, force=False,
                    rerun_failed=True, as_json=as_json)


def _run_and_report(job, *, job_id, cluster, workers, force, rerun_failed, as_json) -> None:
    """Run ``job`` with a progress bar and print how it ended (``run`` and ``rerun``)."""
    from .engine import submit_job
    from .progress import show_progress

    handle = submit_job(job, id=job_id, cluster=cluster, workers=workers, force=force,
                        rerun_failed=rerun_failed)
    try:
        show_progress(handle)
    except KeyboardInterrupt:
        click.echo("interrupted: cancelling the job...", err=True)
        handle.cancel()
        handle.wait(30)
        raise
    result = handle.result()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if result.reused:
        click.echo(f"{result.job_id} is already COMPLETE (use --force to run it again): {result.destination}")
        return
    where = result.cluster or {}
    on = f" on Dask Gateway cluster {where['name']}" if where.get("kind") == "gateway" else ""
    click.echo(f"{result.job_id} COMPLETE: {result.n_chunks} chunk(s) in {result.duration:.1f}s{on}"
               + (f", {result.resumed_chunks} reused from an earlier run" if result.resumed_chunks else "")
               + (" (test job: first chunk only)" if result.test_job else ""))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for out in result.outputs:
        algorithm = next((k for k in ("crc32c", "sha256") if k in out), None)
        digest = f"  {algorithm}:{out[algorithm][:12]}" if algorithm else ""
        click.echo(f"  {out['url']}  {size_text(out['size'])}{digest}")


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--offline", is_flag=True, help="Do not check that storage is reachable.")
def validate(job_file, offline):
    """Check JOB_FILE without running anything."""
    spec = _load(job_file).resolve(check_storage=not offline)
    where = f"{len(spec.files)} source file(s)" if not spec.source.bypass else "no source data (bypass)"
    click.echo(f"{job_file}: valid ({spec.partitioner_name} -> {spec.app.name} -> {spec.assembler_name}; {where})")


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--scheduler", help="Dask scheduler address, or 'sync' to plan in this process.")
@click.option("--workers", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print every chunk reference as JSON.")
@click.option("--limit", default=20, show_default=True, help="Chunks to list.")
def plan(job_file, scheduler, workers, as_json, limit):
    """Show the chunks JOB_FILE would run, without running the app."""
    refs = _load(job_file).plan(scheduler=scheduler or "sync", workers=workers)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in refs], indent=2))
        return
    sizes = [r.size for r in refs if r.size is not None]
    total = sum(sizes)
    click.echo(f"{len(refs)} chunk(s), {size_text(total)} in all"
               + (f", {size_text(min(sizes))} to {size_text(max(sizes))} each" if sizes else ""))
    for r in refs[:limit]:
        click.echo(f"  {r.index:>6}  {size_text(r.size):>10}  {r.describe()}")
    if len(refs) > limit:
        click.echo(f"  ... {len(refs) - limit} more")


@main.command()
@click.argument("kind", required=False, type=click.Choice(["partitioner", "app", "assembler"]))
@click.option("--json", "as_json", is_flag=True)
def components(kind, as_json):
    """List partitioners, apps and assemblers with their params."""
    from .registry import REGISTRIES

    kinds = [kind] if kind else list(REGISTRIES)
    if as_json:
        click.echo(json.dumps({k: [c.to_dict() for c in REGISTRIES[k]] for k in kinds}, indent=2, default=str))
        return
    for k in kinds:
        click.echo(f"{k}s:")
        for comp in REGISTRIES[k]:
            origin = "" if comp.origin == "builtin" else f"  [{comp.origin}]"
            click.echo(f"  {comp.name}{origin}")
            if comp.summary:
                click.echo(f"      {comp.summary}")
            for name, prop in (comp.schema.get("properties") or {}).items():
                typ = prop.get("type") or ("enum" if "enum" in prop else "")
                if not typ and prop.get("anyOf"):  # e.g. a name or a list of names: string|array
                    typ = [branch.get("type", "") for branch in prop["anyOf"]]
                typ = "|".join(typ) if isinstance(typ, list) else typ
                default = f" = {json.dumps(prop['default'])}" if "default" in prop else ""
                click.echo(f"      - {name} ({typ}{default}): {prop.get('description', '')}")
        click.echo("")


@main.command()
@click.argument("job_id", required=False)
@click.option("--limit", default=20, show_default=True, help="Jobs to list; with JOB_ID, chunks to show.")
@click.option("--offset", default=0, show_default=True, help="With JOB_ID: the first chunk shown.")
@click.option("--json", "as_json", is_flag=True)
def jobs(job_id, limit, offset, as_json):
    """List recent jobs, or show one job: its counts, its failed chunks and a
    page of its chunks (a job of 100,000 chunks answers at once)."""
    from .states import Progress
    from .store import CHUNK_FAILED, default_store

    store = default_store()
    if job_id:
        job = store.get_job(job_id)
        if job is None:
            _fail(f"no job {job_id!r} in {store.path}", 1)
        failed = store.chunks(job_id, states=[CHUNK_FAILED], limit=limit)
        failed_total = store.count_chunks(job_id, states=[CHUNK_FAILED])
        if as_json:
            page = {"offset": offset, "limit": limit, "total": store.count_chunks(job_id)}
            click.echo(json.dumps({**job, "chunks": store.chunks(job_id, offset=offset, limit=limit),
                                   "chunkPage": page, "failed": failed, "failedTotal": failed_total},
                                  indent=2, default=str))
            return
        p = Progress.from_dict(job["progress"])
        click.echo(f"{job['id']}  {job['name']}  {job['state']}")
        click.echo(f"  created {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(job['created']))}"
                   + (f", ran {job['duration']:.1f}s" if job.get("duration") else ""))
        click.echo(f"  chunks: {p.summary()}")
        if job.get("error"):
            click.echo("  error: " + job["error"].replace("\n", "\n    "))
        for c in failed:
            click.echo(f"  chunk {c['idx']} FAILED after {c['attempts']} attempt(s): {c['error']}")
        if failed_total > len(failed):
            click.echo(f"  ... and {failed_total - len(failed)} more failed chunk(s) (--limit, --json)")
        for out in ((job.get("result") or {}).get("outputs") or []):
            click.echo(f"  output {out['url']} {size_text(out['size'])}")
        return
    rows = store.list_jobs(limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo(f"no jobs yet in {store.path}")
        return
    for j in rows:
        p = j["progress"]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(j["created"]))
        click.echo(f"{j['id']:<44} {j['state']:<12} {p['done']:>6}/{p['total'] or 0:<6} {when}")


@main.group()
def cluster() -> None:
    """A local cluster kept running in the background, reused by later runs.

    Runs, notebooks and Jupyter jobs of the same BYTENITE_NB_HOME use it when
    nothing else names a cluster, instead of starting one each time.
    """


@cluster.command("start")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: one per core, at most 8).")
@click.option("--idle-timeout", help="Stop after this long without work, e.g. '30 minutes', '2h'; 'never' to "
              "run until stopped (default: the bytenite-nb.local-cluster.idle-timeout setting, 1h).")
def cluster_start(workers, idle_timeout):
    """Start the background cluster (or say where the running one is)."""
    from . import background_cluster, config

    if idle_timeout is None:
        idle_timeout = config.idle_timeout()
    elif idle_timeout.strip().lower() in ("never", "none", "0", ""):
        idle_timeout = None
    else:
        _check_duration(idle_timeout)
    record = background_cluster.start(workers, idle_timeout)
    verb = "started" if record["started_now"] else "already running"
    click.echo(f"background cluster {verb}: {record['address']} ({record['workers']} workers), "
               f"dashboard {record['dashboard']}")
    if record["started_now"] and record.get("idle_timeout"):
        click.echo(f"it stops after {record['idle_timeout']} without work, or with: bytenite-nb cluster stop")


def _check_duration(text: str) -> None:
    from dask.utils import parse_timedelta

    try:
        parse_timedelta(text)
    except (ValueError, KeyError):
        raise click.BadParameter(f"expected a duration such as '30 minutes' or '2h', got {text!r}",
                                 param_hint="--idle-timeout")


@cluster.command("stop")
def cluster_stop():
    """Stop the background cluster and its workers."""
    from . import background_cluster

    record = background_cluster.stop()
    if record is None:
        click.echo(f"no background cluster runs for {background_cluster.folder()}")
        return
    click.echo(f"background cluster at {record['address']} stopped")


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True)
def cluster_status(as_json):
    """Where jobs run now; the background cluster, if one runs. Exit status 1 when none runs."""
    from . import background_cluster
    from .cluster import resolve

    record = background_cluster.running()
    target = resolve()
    shown = {k: v for k, v in (record or {}).items() if k != "tls"}
    if as_json:
        click.echo(json.dumps({"background": shown or None, "jobs_run_on": {
            "kind": target.kind, "address": target.address, "source": target.source}}, indent=2))
    else:
        if record is None:
            click.echo("no background cluster runs (start one with: bytenite-nb cluster start)")
        else:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record["started"]))
            click.echo(f"background cluster: {record['address']}, {record['workers']} workers, "
                       f"dashboard {record['dashboard']}, pid {record['pid']}, since {since}"
                       + (f", stops after {record['idle_timeout']} idle" if record.get("idle_timeout") else ""))
        where = {"sync": "in the calling process (sync)", "local": "a local cluster made by each run"}.get(
            target.kind, target.address or target.kind)
        click.echo(f"jobs run on: {where} ({target.source})")
    if record is None:
        sys.exit(1)


@main.command("clusters")
@click.option("--json", "as_json", is_flag=True)
def clusters(as_json):
    """The clusters jobs can run on: where jobs run now, the background cluster,
    your Dask Gateway clusters (when Dask config names a Gateway) and the
    DaskCluster resources of the Kubernetes namespace (when a kubeconfig is here)."""
    import dask

    import importlib.util

    from . import background_cluster, gateway, kube
    from .cluster import resolve

    target = resolve()
    default = {"kind": target.kind, "address": target.address, "name": target.name, "source": target.source}
    record = background_cluster.running()
    background = {k: v for k, v in (record or {}).items() if k != "tls"} or None
    address = dask.config.get("gateway.address", None)
    found = gateway.list_clusters() if address else []
    on_kube = kube.reachable() and importlib.util.find_spec("kr8s") is not None
    kube_found, kube_error = None, None
    if on_kube:
        try:
            kube_found = kube.list_clusters()
        except ByteniteNBError as exc:  # a kubeconfig whose cluster is away: still list the rest
            kube_error = str(exc)
    if as_json:
        click.echo(json.dumps({"default": default, "background": background,
                               "gateway": {"address": address, "clusters": found} if address else None,
                               "kubernetes": {"clusters": kube_found, "error": kube_error} if on_kube else None},
                              indent=2))
        return
    named = {"sync": "sync (in the calling process)", "local": "local (a local cluster of each run)",
             "gateway": f"gateway:{target.name}" if target.name else "gateway (a new Dask Gateway cluster per job)",
             "kubernetes": f"kubernetes:{target.name}" if target.name else
             "kubernetes (a new dask-kubernetes cluster per job)"}
    click.echo(f"default: {named.get(target.kind, target.address or target.kind)} ({target.source})")
    if background:
        click.echo(f"background: {background['address']}, {background['workers']} workers, "
                   f"dashboard {background['dashboard']}")
    else:
        click.echo("background: none (bytenite-nb cluster start)")
    if kube_error:
        click.echo(f"kubernetes: {kube_error}")
    if kube_found is not None:
        click.echo(f"kubernetes: {len(kube_found)} DaskCluster(s)")
        for c in kube_found:
            click.echo(f"  kubernetes:{c['name']}  {c['phase'] or '?'}  {c['workers']} worker(s) (default group)"
                       f"  dashboard {c['dashboard'] or 'none'}")
    if not address:
        click.echo("gateway: none configured (Dask config gateway.address)")
        return
    click.echo(f"gateway {address}: {len(found)} cluster(s)")
    for c in found:
        workers = "?" if c["workers"] is None else c["workers"]
        click.echo(f"  gateway:{c['name']}  {c['status']}  {workers} worker(s)  dashboard {c['dashboard']}")


@main.group()
def kube() -> None:
    """Kubernetes resources of the dask-kubernetes operator, as YAML (for review,
    GitOps or kubectl apply -f -)."""


@kube.command("spec")
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--name", help="The DaskCluster's name (default: after the job).")
@click.option("--offline", is_flag=True, help="Do not check that storage is reachable.")
def kube_spec(job_file, name, offline):
    """The DaskCluster of JOB_FILE and a DaskWorkerGroup for its app's image."""
    import yaml

    from . import kube

    _check_kube_name(name)
    spec = _load(job_file).resolve(check_storage=not offline)
    click.echo(yaml.safe_dump_all(kube.cluster_resources(spec, name), sort_keys=False), nl=False)


def _check_kube_name(name: str | None) -> None:
    from . import kube

    if name is not None and not kube.NAME.fullmatch(name):
        _fail(f"--name {name!r}: a DaskCluster name is at most 53 lower-case letters, digits and '-', "
              "starting and ending with a letter or digit", 2)


@kube.command("job")
@click.argument("notebook")
@click.option("-p", "--parameter", "params", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A papermill parameter of the notebook (repeatable).")
@click.option("--output", default="out.ipynb", show_default=True, help="The executed notebook, in the job pod.")
@click.option("--name", help="The DaskJob's name (default: after the notebook).")
@click.option("--image", help="The image of the job pod and its cluster (default: bytenite-nb.kubernetes.image).")
def kube_job(notebook, params, output, name, image):
    """A DaskJob that runs job notebook NOTEBOOK (a path in the job's image) with
    papermill on a cluster of its own."""
    import yaml

    from . import kube

    _check_kube_name(name)
    resource = kube.job_resource(notebook, list(params), output=output, name=name, image=image)
    click.echo(yaml.safe_dump(resource, sort_keys=False), nl=False)


# Command groups that live beside the code they drive.
# (one line each; the modules define click groups)
from .folder_cli import app_group, engine_group  # noqa: E402

main.add_command(app_group)
main.add_command(engine_group)
from .notebook_run import notebook as notebook_group  # noqa: E402

main.add_command(notebook_group)

if __name__ == "__main__":
    main()
