/**
 * One job in the main area: its state, progress, outputs, cluster dashboard,
 * its failed, retrying and running chunks, a page of the others, and the end
 * of its output. The panel asks the server again every poll interval while
 * the job is active, and stops when it ends (a rerun or cancel from here or
 * from the sidebar, a submit of the same id, a page change, or opening it
 * again look once more).
 */

import { ReactWidget } from '@jupyterlab/ui-components';
import React from 'react';

import { api, CHUNK_PAGE_SIZE } from './api';
import { ChunkGrid } from './chunkgrid';
import {
  formatDuration,
  formatSize,
  IChunk,
  IChunkGrid,
  IChunkPage,
  IJobDetail,
  isActive,
  pageFrom,
  pageLabel,
  pageMoves,
  Poller,
  progressBreakdown
} from './model';
import { ISidebarActions, ProgressBar, reportError, showText, StateBadge } from './sidebar';

function ChunkTable(props: { chunks: IChunk[]; jobId: string }): JSX.Element {
  return (
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
        {props.chunks.map(c => (
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
                  onClick={() => showText(`Chunk ${c.index} of ${props.jobId}`, c.error ?? '')}
                >
                  Show error
                </button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Which chunks a page shows, with Previous, Next and "From chunk" (a page
 * starting at any chunk): a job's chunks, or a plan's. */
export function Pager(props: { page: IChunkPage; go: (offset: number) => void }): JSX.Element {
  const { previous, next } = pageMoves(props.page);
  const [from, setFrom] = React.useState('');
  const jump = () => {
    const offset = pageFrom(from, props.page.total);
    if (offset !== null) {
      props.go(offset);
    }
  };
  return (
    <div className="bnb-Pager" data-offset={props.page.offset}>
      <span className="bnb-Pager-label">{pageLabel(props.page)}</span>{' '}
      <button
        className="bnb-Button bnb-Small"
        data-action="previous-page"
        disabled={previous === null}
        onClick={() => previous !== null && props.go(previous)}
      >
        ‹ Previous
      </button>
      <button
        className="bnb-Button bnb-Small"
        data-action="next-page"
        disabled={next === null}
        onClick={() => next !== null && props.go(next)}
      >
        Next ›
      </button>{' '}
      <label className="bnb-Pager-from">
        From chunk{' '}
        <input
          type="number"
          min={0}
          max={Math.max(0, props.page.total - 1)}
          data-action="page-from"
          value={from}
          onChange={event => setFrom(event.currentTarget.value)}
          onKeyDown={event => event.key === 'Enter' && jump()}
        />
      </label>{' '}
      <button
        className="bnb-Button bnb-Small"
        data-action="page-go"
        disabled={pageFrom(from, props.page.total) === null}
        onClick={jump}
      >
        Go
      </button>
    </div>
  );
}

function JobDetailView(props: {
  job: IJobDetail | null;
  grid: IChunkGrid | null;
  gridPage: (offset: number) => void;
  error: string | null;
  actions: ISidebarActions;
  act: (what: 'cancel' | 'rerun') => void;
  page: (offset: number) => void;
}): JSX.Element {
  const { job, error, actions, act } = props;
  if (!job) {
    return <div className="bnb-Detail">{error ? <div className="bnb-Error">{error}</div> : 'Loading…'}</div>;
  }
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
            <td className="bnb-Detail-counts">{progressBreakdown(job.progress)}</td>
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
            <td className="bnb-Detail-cluster">
              {job.cluster?.name ? `${job.cluster.kind} cluster ${job.cluster.name} ` : ''}
              {job.cluster?.scheduler ?? (isActive(job) ? 'starting…' : '-')}{' '}
              {job.cluster?.dashboard && (
                <a href={job.cluster.dashboard} target="_blank" rel="noreferrer">
                  dashboard
                </a>
              )}
              {job.runsOn && <div className="bnb-Muted bnb-Detail-runsOn">{job.runsOn}</div>}
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
      {props.grid && props.grid.total > 0 && (
        <>
          <h3>Chunks at a glance</h3>
          <ChunkGrid jobId={job.id} grid={props.grid} go={props.gridPage} />
        </>
      )}
      {job.attentionTotal > 0 && (
        <>
          <h3>Failed, retrying and running chunks</h3>
          <ChunkTable chunks={job.attention} jobId={job.id} />
          {job.attentionTotal > job.attention.length && (
            <div className="bnb-Muted">… and {job.attentionTotal - job.attention.length} more</div>
          )}
        </>
      )}
      <h3>{job.attentionTotal > 0 ? 'Other chunks' : 'Chunks'}</h3>
      <Pager page={job.chunkPage} go={props.page} />
      <ChunkTable chunks={job.chunks} jobId={job.id} />
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
  private job: IJobDetail | null = null;
  private grid: IChunkGrid | null = null;
  private error: string | null = null;
  private offset = 0;
  private gridOffset = 0;
  private readonly poller: Poller;

  constructor(
    readonly jobId: string,
    pollInterval: number,
    private readonly actions: ISidebarActions
  ) {
    super();
    this.addClass('bnb-DetailWidget');
    this.id = `bytenite-nb-job-${jobId}`;
    this.title.label = `Job ${jobId}`;
    this.title.closable = true;
    this.poller = new Poller(() => this.load(), Math.max(0.25, pollInterval) * 1000);
    this.poller.kick();
  }

  /** Ask the server about the job now (and follow it again while it is active). */
  refresh(): void {
    this.poller.kick();
  }

  dispose(): void {
    this.poller.dispose();
    super.dispose();
  }

  /** One poll: true while the job is active. */
  private async load(): Promise<boolean> {
    try {
      [this.job, this.grid] = await Promise.all([
        api.job(this.jobId, this.offset, CHUNK_PAGE_SIZE),
        api.chunkGrid(this.jobId, this.gridOffset)
      ]);
      this.error = null;
    } catch (e) {
      this.error = String((e as Error).message ?? e);
    }
    this.update();
    return this.job === null || this.error !== null || isActive(this.job);
  }

  private async act(what: 'cancel' | 'rerun'): Promise<void> {
    try {
      await (what === 'cancel' ? api.cancel(this.jobId) : api.rerun(this.jobId));
    } catch (e) {
      reportError(`Cannot ${what} ${this.jobId}`, e);
    }
    this.refresh();
  }

  render(): JSX.Element {
    return (
      <JobDetailView
        job={this.job}
        grid={this.grid}
        gridPage={offset => {
          this.gridOffset = offset;
          this.refresh();
        }}
        error={this.error}
        actions={this.actions}
        act={what => void this.act(what)}
        page={offset => {
          this.offset = offset;
          this.refresh();
        }}
      />
    );
  }
}
