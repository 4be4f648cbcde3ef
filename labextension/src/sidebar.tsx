/**
 * The ByteNite sidebar: Jobs (live list with actions), Components (the
 * catalog with params documentation) and Cluster (where jobs run, dashboards).
 */

import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { api, ApiError } from './api';
import { ClusterList, ClusterView } from './cluster';
import { ComponentEntry } from './components';
import {
  formatDuration,
  ICatalog,
  IClusterEntry,
  IClusterInfo,
  IClusterList,
  IJobSummary,
  isActive,
  progressParts,
  progressText
} from './model';

const RELOAD_AFTER_ERROR_MS = 5000;
const CLUSTER_REFRESH_MS = 15000;

/** What the sidebar needs from the rest of the extension. */
export interface ISidebarActions {
  /** Open a job's detail panel. */
  openJob(id: string): void;
  /** Show a job's output location (the file browser for a local folder). */
  openOutput(job: IJobSummary): void;
  /** Open a job file in the job editor. */
  openJobFile(path: string): void;
  /** A job was cancelled or rerun: whatever shows it looks again. */
  jobChanged(id: string): void;
}

/** Settings the sidebar follows. */
export interface ISidebarSettings {
  pollInterval: number; // seconds
  defaultCluster: string;
  showCluster: boolean;
}

/** Show an error from the server with the library's message. */
export function reportError(title: string, error: unknown): void {
  const message =
    error instanceof ApiError && error.errors.length > 1
      ? error.errors.map(e => `${e.field || 'job'}: ${e.message}`).join('\n')
      : (error as Error).message ?? String(error);
  void showErrorMessage(title, message);
}

/** A dialog with a long text (a chunk's error, a job's error). */
export function showText(title: string, text: string): void {
  void showDialog({
    title,
    body: ReactWidget.create(<pre className="bnb-ErrorText">{text}</pre>),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

/** A progress bar: done (green), failed (red), cancelled (grey), retrying (amber), running (blue); pending is the rest. */
export function ProgressBar(props: { job: IJobSummary }): JSX.Element {
  const parts = progressParts(props.job.progress);
  return (
    <div className="bnb-Progress" title={progressText(props.job.progress)}>
      {(['done', 'failed', 'cancelled', 'retrying', 'running'] as const).map(category => (
        <div key={category} className={`bnb-Progress-${category}`} style={{ width: `${parts[category] * 100}%` }} />
      ))}
    </div>
  );
}

/** A state badge. */
export function StateBadge(props: { state: string }): JSX.Element {
  return <span className={`bnb-State bnb-State-${props.state}`}>{props.state}</span>;
}

function JobRow(props: { job: IJobSummary; actions: ISidebarActions; refresh: () => void }): JSX.Element {
  const { job, actions, refresh } = props;
  const act = async (what: 'cancel' | 'rerun') => {
    try {
      await (what === 'cancel' ? api.cancel(job.id) : api.rerun(job.id));
    } catch (error) {
      reportError(what === 'cancel' ? `Cannot cancel ${job.id}` : `Cannot rerun ${job.id}`, error);
    }
    refresh();
    actions.jobChanged(job.id);
  };
  return (
    <li className="bnb-Job" data-job-id={job.id} data-state={job.state}>
      <div className="bnb-Job-head">
        <span className="bnb-Job-name" title={job.id}>
          {job.name || job.id}
        </span>
        <StateBadge state={job.state} />
      </div>
      <ProgressBar job={job} />
      <div className="bnb-Job-stats">
        <span className="bnb-Job-counts">{progressText(job.progress)}</span>
        <span className="bnb-Job-duration">{formatDuration(job.duration)}</span>
      </div>
      {(job.failedChunks ?? 0) > 0 && (
        <div className="bnb-Job-partial bnb-Muted" title="The output lacks them; _SUCCESS lists them (minSuccessRatio)">
          complete without {job.failedChunks} failed chunk(s)
        </div>
      )}
      <div className="bnb-Job-id">{job.id}</div>
      <div className="bnb-Job-actions">
        <button className="bnb-Button" data-action="open" onClick={() => actions.openJob(job.id)}>
          Open
        </button>
        {job.canCancel && job.startedFrom === 'jupyterlab' && (
          <button className="bnb-Button" data-action="cancel" onClick={() => void act('cancel')}>
            Cancel
          </button>
        )}
        {job.canRerun && (
          <button
            className="bnb-Button"
            data-action="rerun"
            title="Run again with the same id: only the chunks that did not complete run"
            onClick={() => void act('rerun')}
          >
            Rerun failed
          </button>
        )}
        {job.destination && (
          <button className="bnb-Button" data-action="output" title={job.destination} onClick={() => actions.openOutput(job)}>
            Output
          </button>
        )}
        {job.error && (
          <button className="bnb-Button" data-action="error" onClick={() => showText(`${job.id}: ${job.state}`, job.error ?? '')}>
            Error
          </button>
        )}
      </div>
    </li>
  );
}

function Section(props: { title: string; name: string; children: React.ReactNode; extra?: React.ReactNode }): JSX.Element {
  const [open, setOpen] = useState(true);
  return (
    <section className="bnb-Section" data-section={props.name}>
      <header className="bnb-Section-header">
        <button className="bnb-Section-toggle" aria-expanded={open} onClick={() => setOpen(!open)}>
          {open ? '▾' : '▸'} {props.title}
        </button>
        {props.extra}
      </header>
      {open && <div className="bnb-Section-body">{props.children}</div>}
    </section>
  );
}

function ComponentsSection(): JSX.Element {
  const [catalog, setCatalog] = useState<ICatalog | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let timer = 0;
    const load = () =>
      api.components().then(setCatalog, e => {
        setError(String(e.message ?? e));
        timer = window.setTimeout(load, RELOAD_AFTER_ERROR_MS); // the server may be restarting
      });
    void load();
    return () => window.clearTimeout(timer);
  }, []);
  return (
    <Section title="Components" name="components">
      {error && <div className="bnb-Error">{error}</div>}
      {catalog &&
        (['partitioner', 'app', 'assembler'] as const).map(kind => (
          <div key={kind} className="bnb-Components" data-kind={kind}>
            <h4>{kind}s</h4>
            <ul>
              {catalog[kind].map(c => (
                <ComponentEntry key={c.name} component={c} />
              ))}
            </ul>
          </div>
        ))}
    </Section>
  );
}

function ClusterSection(props: { address: string }): JSX.Element {
  const [info, setInfo] = useState<IClusterInfo | null>(null);
  const [list, setList] = useState<IClusterList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api.cluster(props.address || null).then(
      i => {
        setInfo(i);
        setError(null);
      },
      e => setError(String(e.message ?? e))
    );
    api.clusters(props.address || null).then(setList, e => setError(String(e.message ?? e)));
  }, [props.address]);
  const scale = async (cluster: IClusterEntry, workers: number) => {
    try {
      await api.scaleCluster(cluster.kind, cluster.name, workers);
    } catch (e) {
      reportError(`Cannot scale ${cluster.target}`, e);
    }
    load();
  };
  const shutdown = async (cluster: IClusterEntry) => {
    try {
      await api.shutdownCluster(cluster.kind, cluster.name);
    } catch (e) {
      reportError(`Cannot shut down ${cluster.target}`, e);
    }
    load();
  };
  useEffect(() => {
    load();
    // Which jobs run, and their dashboards, change: look again now and then.
    const timer = window.setInterval(load, CLUSTER_REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [load]);
  return (
    <Section
      title="Cluster"
      name="cluster"
      extra={
        <button className="bnb-Button bnb-Small" onClick={load} title="Look again">
          ↻
        </button>
      }
    >
      {error && <div className="bnb-Error">{error}</div>}
      {info && <ClusterView info={info} />}
      {list && <ClusterList list={list} scale={(c, n) => void scale(c, n)} shutdown={c => void shutdown(c)} />}
    </Section>
  );
}

function JobsSection(props: { settings: ISidebarSettings; actions: ISidebarActions; changed: ISignal<any, void> }): JSX.Element {
  const [jobs, setJobs] = useState<IJobSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const busy = useRef(false);
  const load = useCallback(async () => {
    if (busy.current) {
      return;
    }
    busy.current = true;
    try {
      setJobs((await api.jobs()).jobs);
      setError(null);
    } catch (e) {
      setError(String((e as Error).message ?? e));
    } finally {
      busy.current = false;
    }
  }, []);
  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), Math.max(0.25, props.settings.pollInterval) * 1000);
    const reload = () => void load();
    props.changed.connect(reload);
    return () => {
      window.clearInterval(timer);
      props.changed.disconnect(reload);
    };
  }, [load, props.settings.pollInterval, props.changed]);
  const active = (jobs ?? []).filter(isActive).length;
  return (
    <Section
      title={`Jobs${active ? ` (${active} running)` : ''}`}
      name="jobs"
      extra={
        <button className="bnb-Button bnb-Small" onClick={() => void load()} title="Refresh">
          ↻
        </button>
      }
    >
      {error && <div className="bnb-Error">{error}</div>}
      {jobs && jobs.length === 0 && <div className="bnb-Muted">No jobs yet. Open a job file and press Run.</div>}
      <ul className="bnb-Jobs">
        {(jobs ?? []).map(job => (
          <JobRow key={job.id} job={job} actions={props.actions} refresh={() => void load()} />
        ))}
      </ul>
    </Section>
  );
}

/** The sidebar widget. */
export class JobsSidebar extends ReactWidget {
  constructor(
    private readonly actions: ISidebarActions,
    private settings: ISidebarSettings
  ) {
    super();
    this.addClass('bnb-Sidebar');
    this.id = 'bytenite-nb-sidebar';
  }

  /** Emitted to make the jobs list refresh now (after a submit). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Ask the jobs list to refresh now. */
  refresh(): void {
    this._changed.emit();
  }

  /** Follow new settings. */
  updateSettings(settings: ISidebarSettings): void {
    this.settings = settings;
    this.update();
  }

  render(): JSX.Element {
    return (
      <div className="bnb-SidebarBody">
        <JobsSection settings={this.settings} actions={this.actions} changed={this._changed} />
        <ComponentsSection />
        {this.settings.showCluster && <ClusterSection address={this.settings.defaultCluster} />}
      </div>
    );
  }

  private _changed = new Signal<this, void>(this);
}
