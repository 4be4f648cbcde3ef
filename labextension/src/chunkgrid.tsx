/**
 * A job's chunks at a glance: one cell per chunk on a canvas, coloured by
 * state, from the server's compact page (`GET /bytenite-nb/jobs/ID/chunks`:
 * a letter per chunk, a worker index per chunk). Ten thousand cells are one
 * canvas and one pass of rectangles, not ten thousand elements. A click on a
 * cell asks for that chunk alone (`GET .../chunk?index=N`) and shows its
 * attempts, its error and the worker that ran it; below, how many chunks
 * each worker ran.
 */

import React, { useEffect, useRef, useState } from 'react';

import { api, CHUNK_GRID_PAGE } from './api';
import { cellAt, formatDuration, IChunkDetail, IChunkGrid, LatestOnly, STATE_COLOURS, workerCounts } from './model';
import { StateBadge } from './sidebar';

/** Pixels per cell (a one-pixel gap included) and cells per row. */
export const GRID_CELL = 6;
export const GRID_COLUMNS = 100;

function draw(canvas: HTMLCanvasElement, grid: IChunkGrid, selected: number | null): void {
  const count = grid.states.length;
  const rows = Math.max(1, Math.ceil(count / GRID_COLUMNS));
  canvas.width = GRID_COLUMNS * GRID_CELL;
  canvas.height = rows * GRID_CELL;
  const context = canvas.getContext('2d');
  if (!context) {
    return;
  }
  context.clearRect(0, 0, canvas.width, canvas.height);
  // One colour at a time: ten thousand rectangles, six fill colours.
  for (const [letter, state] of Object.entries(grid.legend)) {
    context.fillStyle = STATE_COLOURS[state] ?? '#000';
    for (let i = grid.states.indexOf(letter); i >= 0; i = grid.states.indexOf(letter, i + 1)) {
      context.fillRect((i % GRID_COLUMNS) * GRID_CELL, Math.floor(i / GRID_COLUMNS) * GRID_CELL, GRID_CELL - 1, GRID_CELL - 1);
    }
  }
  if (selected !== null && selected >= grid.offset && selected < grid.offset + count) {
    const at = selected - grid.offset;
    context.strokeStyle = '#000';
    context.lineWidth = 1;
    context.strokeRect((at % GRID_COLUMNS) * GRID_CELL - 0.5, Math.floor(at / GRID_COLUMNS) * GRID_CELL - 0.5, GRID_CELL, GRID_CELL);
  }
}

function ChunkDetailView(props: { chunk: IChunkDetail }): JSX.Element {
  const { chunk } = props;
  return (
    <div className="bnb-GridChunk" data-chunk={chunk.index} data-state={chunk.state}>
      <h4>
        Chunk {chunk.index} <StateBadge state={chunk.state} />
      </h4>
      <table className="bnb-Facts">
        <tbody>
          <tr>
            <th>attempts</th>
            <td className="bnb-GridChunk-attempts">{chunk.attempts}</td>
          </tr>
          <tr>
            <th>duration</th>
            <td>{formatDuration(chunk.duration)}</td>
          </tr>
          <tr>
            <th>worker</th>
            <td className="bnb-GridChunk-worker">{chunk.worker ?? 'none recorded (no Dask worker)'}</td>
          </tr>
          <tr>
            <th>covers</th>
            <td>{chunk.covers ?? '-'}</td>
          </tr>
        </tbody>
      </table>
      {chunk.error && <pre className="bnb-ErrorText bnb-GridChunk-error">{chunk.error}</pre>}
      {chunk.history.length > 0 && (
        <ol className="bnb-GridChunk-history">
          {chunk.history.map((h, i) => (
            <li key={i} data-state={h.state}>
              {h.state}
              {h.attempt !== null ? ` (attempt ${h.attempt})` : ''}
              {h.worker ? ` on ${h.worker}` : ''}
              {h.error ? `: ${h.error.split('\n')[0]}` : ''}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

/** The grid of a job: its page of chunk states, the detail of a clicked chunk, the workers. */
export function ChunkGrid(props: { jobId: string; grid: IChunkGrid; go: (offset: number) => void }): JSX.Element {
  const { grid, jobId } = props;
  const canvas = useRef<HTMLCanvasElement>(null);
  const [selected, setSelected] = useState<number | null>(null);
  const [chunk, setChunk] = useState<IChunkDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (canvas.current) {
      draw(canvas.current, grid, selected);
    }
  }, [grid, selected]);
  const chunkAnswers = useRef(new LatestOnly()); // cells clicked in quick succession: show the last one's
  const open = async (index: number) => {
    setSelected(index);
    try {
      const answer = await chunkAnswers.current.answer(() => api.chunk(jobId, index));
      if (answer !== null) {
        setChunk(answer.value);
        setError(null);
      }
    } catch (e) {
      setError(String((e as Error).message ?? e));
    }
  };
  const onClick = (event: React.MouseEvent<HTMLCanvasElement>) => {
    const box = event.currentTarget.getBoundingClientRect();
    const at = cellAt(event.clientX - box.left, event.clientY - box.top, GRID_COLUMNS, GRID_CELL, grid.states.length);
    if (at !== null) {
      void open(grid.offset + at);
    }
  };
  const counts = workerCounts(grid);
  const end = grid.offset + grid.states.length;
  return (
    <div className="bnb-Grid" data-total={grid.total} data-offset={grid.offset} data-cells={grid.states.length}>
      <div className="bnb-Grid-legend">
        {Object.values(grid.legend).map(state => (
          <span key={state} className="bnb-Grid-key">
            <span className="bnb-Grid-swatch" style={{ background: STATE_COLOURS[state] }} /> {state.toLowerCase()}
          </span>
        ))}
      </div>
      {grid.total > grid.states.length && (
        <div className="bnb-Grid-pager">
          chunks {grid.offset}–{end - 1} of {grid.total}{' '}
          <button className="bnb-Button bnb-Small" data-action="grid-previous" disabled={grid.offset === 0}
            onClick={() => props.go(Math.max(0, grid.offset - CHUNK_GRID_PAGE))}>
            ‹
          </button>
          <button className="bnb-Button bnb-Small" data-action="grid-next" disabled={end >= grid.total}
            onClick={() => props.go(end)}>
            ›
          </button>
        </div>
      )}
      <canvas
        ref={canvas}
        className="bnb-Grid-canvas"
        data-columns={GRID_COLUMNS}
        data-cell={GRID_CELL}
        title="Click a chunk for its attempts and error"
        onClick={onClick}
      />
      {error && <div className="bnb-Error">{error}</div>}
      {chunk && <ChunkDetailView chunk={chunk} />}
      {counts.length > 0 && (
        <table className="bnb-Grid-workers">
          <thead>
            <tr>
              <th>worker</th>
              <th>chunks</th>
            </tr>
          </thead>
          <tbody>
            {counts.map(c => (
              <tr key={c.worker}>
                <td>{c.worker}</td>
                <td>{c.chunks}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
