/**
 * Where jobs run, as the server says it (`GET /bytenite-nb/cluster`): its
 * description shown as it is, a note about the configuration, the
 * scheduler's dashboard and those of the jobs running now. The words are
 * the server's, which knows how each kind of app runs; the sidebar adds none.
 */

import React from 'react';

import { IClusterInfo } from './model';

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
