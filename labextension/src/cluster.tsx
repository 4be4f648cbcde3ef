/**
 * Where jobs run, as the server says it (`GET /bytenite-nb/cluster`): its
 * description shown as it is, a note about the configuration, the
 * scheduler's dashboard and those of the jobs running now. The words are
 * the server's, which knows how each kind of app runs; the sidebar adds none.
 */

import React, { useState } from 'react';

import { IClusterEntry, IClusterInfo, IClusterList } from './model';

/** The cluster section's content for one answer of the server. */
export function ClusterView(props: { info: IClusterInfo }): JSX.Element {
  const { info } = props;
  return (
    <div className="bnb-Cluster" data-kind={info.kind}>
      <div className="bnb-Cluster-description">{info.description}</div>
      {info.note && <div className="bnb-Cluster-note bnb-Muted">{info.note}</div>}
      {info.kind === 'scheduler' &&
        (info.dashboard ? (
          <a href={info.dashboard} target="_blank" rel="noreferrer">
            Dask dashboard
          </a>
        ) : (
          <div className="bnb-Muted">The scheduler does not answer, or has no dashboard.</div>
        ))}
      {info.running.length > 0 && (
        <ul className="bnb-Cluster-running">
          {info.running.map(r => (
            <li key={r.id}>
              {r.name || r.id}:{' '}
              {r.dashboard ? (
                <a href={r.dashboard} target="_blank" rel="noreferrer">
                  dashboard
                </a>
              ) : (
                'no dashboard'
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/**
 * The Dask Gateway and Kubernetes clusters the server sees (`GET
 * /bytenite-nb/clusters`): workers, status, dashboard; this user's may be
 * scaled and shut down. A source that cannot be listed says why.
 */
export function ClusterList(props: {
  list: IClusterList;
  scale: (cluster: IClusterEntry, workers: number) => void;
  shutdown: (cluster: IClusterEntry) => void;
}): JSX.Element {
  const { list } = props;
  return (
    <div className="bnb-ClusterList">
      {list.errors.map(e => (
        <div key={e.kind} className="bnb-Error" data-kind={e.kind}>
          {e.message}
        </div>
      ))}
      {list.clusters.length === 0 && list.errors.length === 0 && (
        <div className="bnb-Muted">No Dask Gateway or Kubernetes clusters running.</div>
      )}
      <ul className="bnb-Clusters">
        {list.clusters.map(c => (
          <ClusterRow key={c.target} cluster={c} scale={props.scale} shutdown={props.shutdown} />
        ))}
      </ul>
    </div>
  );
}

function ClusterRow(props: {
  cluster: IClusterEntry;
  scale: (cluster: IClusterEntry, workers: number) => void;
  shutdown: (cluster: IClusterEntry) => void;
}): JSX.Element {
  const { cluster } = props;
  const [workers, setWorkers] = useState(String(cluster.workers ?? 1));
  const wanted = Number(workers);
  const valid = workers.trim() !== '' && Number.isInteger(wanted) && wanted >= 0;
  return (
    <li className="bnb-ClusterRow" data-target={cluster.target} data-status={cluster.status}>
      <span className="bnb-ClusterRow-name">{cluster.target}</span>{' '}
      <span className="bnb-ClusterRow-workers">
        {cluster.workers ?? '?'} worker{cluster.workers === 1 ? '' : 's'}
      </span>{' '}
      <span className="bnb-Muted">{cluster.status}</span>{' '}
      {cluster.dashboard && (
        <a href={cluster.dashboard} target="_blank" rel="noreferrer">
          dashboard
        </a>
      )}
      {cluster.yours && (
        <div className="bnb-ClusterRow-actions">
          <input
            className="bnb-ClusterRow-scale"
            type="number"
            min={0}
            value={workers}
            onChange={e => setWorkers(e.target.value)}
            aria-label={`Workers of ${cluster.name}`}
          />
          <button
            className="bnb-Button bnb-Small"
            data-action="scale"
            disabled={!valid}
            onClick={() => props.scale(cluster, wanted)}
          >
            Scale
          </button>
          <button className="bnb-Button bnb-Small" data-action="shutdown" onClick={() => props.shutdown(cluster)}>
            Shut down
          </button>
        </div>
      )}
    </li>
  );
}
