/**
 * One job in the main area: its state, progress, outputs, cluster dashboard,
 * every chunk (state, attempts, duration, error) and the end of its output.
 */

import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useState } from 'react';

import { api } from './api';
import { formatDuration, formatSize, IJobDetail, isActive } from './model';
import { ISidebarActions, ProgressBar, reportError, showText, StateBadge } from './sidebar';

function JobDetailView(props: { jobId: string; pollInterval: number; actions: ISidebarActions }): JSX.Element {
  const { jobId, actions } = props;
  const [job, setJob] = useState<IJobDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setJob(await api.job(jobId));
      setError(null);
    } catch (e) {
      setError(String((e as Error).message ?? e));
    }
  }, [jobId]);
  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), Math.max(0.25, props.pollInterval) * 1000);
    return () => window.clearInterval(timer);
  }, [load, props.pollInterval]);

  if (!job) {
    return <div className="bnb-Detail">{error ? <div className="bnb-Error">{error}</div> : 'Loading…'}</div>;
  }
  const act = async (what: 'cancel' | 'rerun') => {
    try {
      await (what === 'cancel' ? api.cancel(job.id) : api.rerun(job.id));
    } catch (e) {
      reportError(`Cannot ${what} ${job.id}`, e);
    }
    void load();
  };
  const p = job.progress;
  return (
    <div className="bnb-Detail" data-job-id={job.id} data-state={job.state}>
      <h2>
        {job.name || job.id} <StateBadge state={job.state} />
      </h2>
      <ProgressBar job={job} />
      <table className="bnb-Facts">
        <tbody>
          <tr>
            <th>id</th>
            <td>{job.id}</td>
          </tr>
          <tr>
            <th>chunks</th>
            <td>
              {p.done}/{p.total ?? 0} done, {p.failed} failed, {p.running} running, {p.pending} pending
              {p.cancelled ? `, ${p.cancelled} cancelled` : ''}
            </td>
          </tr>
          <tr>
            <th>duration</th>
            <td>
              {formatDuration(job.duration)}
              {job.runs > 1 ? ` (run ${job.runs})` : ''}
            </td>
          </tr>
          <tr>
            <th>destination</th>
            <td>
              {job.destination ?? '-'}{' '}
              {job.destination && (
                <button className="bnb-Button bnb-Small" onClick={() => actions.openOutput(job)}>
                  Open
                </button>
              )}
            </td>
          </tr>
          {job.jobFile && (
            <tr>
              <th>job file</th>
              <td>
                <a href="#" onClick={e => (e.preventDefault(), actions.openJobFile(job.jobFile!))}>
                  {job.jobFile}
                </a>
              </td>
            </tr>
          )}
          <tr>
            <th>cluster</th>
            <td>
              {job.cluster?.scheduler ?? (isActive(job) ? 'starting…' : '-')}{' '}
              {job.cluster?.dashboard && (
                <a href={job.cluster.dashboard} target="_blank" rel="noreferrer">
                  dashboard
                </a>
              )}
            </td>
          </tr>
        </tbody>
      </table>
      <div className="bnb-Job-actions">
        {job.canCancel && job.startedFrom === 'jupyterlab' && (
          <button className="bnb-Button" data-action="cancel" onClick={() => void act('cancel')}>
            Cancel
          </button>
        )}
        {job.canRerun && (
          <button className="bnb-Button" data-action="rerun" onClick={() => void act('rerun')}>
            Rerun failed chunks
          </button>
        )}
      </div>
      {job.error && <pre className="bnb-ErrorText bnb-Detail-error">{job.error}</pre>}
      {job.outputs.length > 0 && (
        <>
          <h3>Outputs</h3>
          <ul className="bnb-Outputs">
            {job.outputs.map(o => (
              <li key={o.url}>
                {o.path !== null ? (
                  <a href="#" onClick={e => (e.preventDefault(), actions.openJobFile(o.path!))}>
                    {o.path}
                  </a>
                ) : (
                  o.url
                )}{' '}
                <span className="bnb-Muted">{formatSize(o.size)}</span>
              </li>
            ))}
          </ul>
        </>
      )}
      <h3>Chunks</h3>
      <table className="bnb-Chunks">
        <thead>
          <tr>
            <th>#</th>
            <th>state</th>
            <th>attempts</th>
            <th>duration</th>
            <th>size</th>
            <th>covers</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {job.chunks.map(c => (
            <tr key={c.index} data-chunk={c.index} data-state={c.state}>
              <td>{c.index}</td>
              <td>
                <StateBadge state={c.state} />
              </td>
              <td>{c.attempts}</td>
              <td>{formatDuration(c.duration)}</td>
              <td>{formatSize(c.size)}</td>
              <td className="bnb-Chunk-covers">{c.covers}</td>
              <td>
                {c.error && (
                  <button
                    className="bnb-Button bnb-Small"
                    data-action="chunk-error"
                    onClick={() => showText(`Chunk ${c.index} of ${job.id}`, c.error ?? '')}
                  >
                    Show error
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {job.log && (
        <>
          <h3>Output of the job process</h3>
          <pre className="bnb-Log">{job.log}</pre>
        </>
      )}
    </div>
  );
}

/** The main-area panel of one job. */
export class JobDetailWidget extends ReactWidget {
  constructor(
    readonly jobId: string,
    private readonly pollInterval: number,
    private readonly actions: ISidebarActions
  ) {
    super();
    this.addClass('bnb-DetailWidget');
    this.id = `bytenite-nb-job-${jobId}`;
    this.title.label = `Job ${jobId}`;
    this.title.closable = true;
  }

  render(): JSX.Element {
    return <JobDetailView jobId={this.jobId} pollInterval={this.pollInterval} actions={this.actions} />;
  }
}
