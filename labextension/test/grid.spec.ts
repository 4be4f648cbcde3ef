/**
 * The chunk grid's arithmetic (which cell a click lands on, how many chunks
 * each worker ran) and the cluster list as the sidebar renders it.
 */

import React from 'react';

import { ClusterList } from '../src/cluster';
import { cellAt, gridColumns, IChunkGrid, IClusterList, workerCounts } from '../src/model';

const { renderToStaticMarkup } = require('react-dom/server') as { renderToStaticMarkup: (e: React.ReactElement) => string };

describe('cellAt', () => {
  it('finds the chunk under a point of a grid of 100 columns of 6 pixels', () => {
    expect(cellAt(0, 0, 100, 6, 10000)).toBe(0);
    expect(cellAt(5.9, 5.9, 100, 6, 10000)).toBe(0);
    expect(cellAt(6, 0, 100, 6, 10000)).toBe(1);
    expect(cellAt(42 * 6 + 3, 42 * 6 + 3, 100, 6, 10000)).toBe(4242);
    expect(cellAt(599, 599, 100, 6, 10000)).toBe(9999);
  });

  it('is null off the cells', () => {
    expect(cellAt(-1, 0, 100, 6, 10000)).toBeNull();
    expect(cellAt(600, 0, 100, 6, 10000)).toBeNull();
    expect(cellAt(0, 600, 100, 6, 10000)).toBeNull();
    expect(cellAt(3 * 6, 0, 100, 6, 3)).toBeNull();
  });

  it('fits at least one column', () => {
    expect(gridColumns(600, 6)).toBe(100);
    expect(gridColumns(2, 6)).toBe(1);
  });
});

describe('workerCounts', () => {
  it('counts the chunks of each worker, most first, leaving out chunks of none', () => {
    const grid: IChunkGrid = {
      total: 5,
      offset: 0,
      first: 0,
      states: 'DDDDP',
      workers: [0, 1, 1, -1, -1],
      workerNames: ['tcp://a:1', 'tcp://b:2'],
      legend: { D: 'DONE', P: 'PENDING' }
    };
    expect(workerCounts(grid)).toEqual([
      { worker: 'tcp://b:2', chunks: 2 },
      { worker: 'tcp://a:1', chunks: 1 }
    ]);
  });
});

describe('ClusterList', () => {
  const list: IClusterList = {
    clusters: [
      { kind: 'gateway', name: 'abc', target: 'gateway:abc', workers: 2, status: 'running', dashboard: 'http://gw/clusters/abc/status', yours: true },
      { kind: 'kubernetes', name: 'team', target: 'kubernetes:team', workers: 1, status: 'running', dashboard: null, yours: false }
    ],
    choices: [],
    errors: [{ kind: 'kubernetes', message: 'cannot list DaskCluster resources: Forbidden' }]
  };
  const html = renderToStaticMarkup(React.createElement(ClusterList, { list, scale: () => undefined, shutdown: () => undefined }));

  it('shows each cluster with its workers and dashboard', () => {
    expect(html).toContain('gateway:abc');
    expect(html).toContain('2 workers');
    expect(html).toContain('href="http://gw/clusters/abc/status"');
    expect(html).toContain('kubernetes:team');
  });

  it('offers scale and shut down only for clusters of this user', () => {
    expect(html.match(/data-action="shutdown"/g)?.length).toBe(1);
    expect(html.match(/data-action="scale"/g)?.length).toBe(1);
    const team = html.slice(html.indexOf('data-target="kubernetes:team"'));
    expect(team).not.toContain('data-action="shutdown"');
  });

  it('says why a source cannot be listed', () => {
    expect(html).toContain('cannot list DaskCluster resources: Forbidden');
  });
});
