/**
 * The sidebar's cluster section shows where jobs run in the server's words,
 * as the server serves them (fixtures/cluster.json, kept up to date by
 * tests/test_server.py), and adds none of its own.
 */

import * as fs from 'fs';
import * as path from 'path';

import React from 'react';

import { ClusterView } from '../src/cluster';
import { IClusterInfo } from '../src/model';

// react-dom ships no type declarations here; its server renderer needs no DOM
const { renderToStaticMarkup } = require('react-dom/server') as { renderToStaticMarkup: (e: React.ReactElement) => string };

const served: { name: string; answer: IClusterInfo }[] = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'cluster.json'), 'utf8')
).answers;

/** Text as React writes it into markup. */
function escaped(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');
}

function shown(info: IClusterInfo): string {
  return renderToStaticMarkup(React.createElement(ClusterView, { info }));
}

/** The text of the rendered markup, tags left out. */
function textOf(html: string): string {
  return html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
}

describe('ClusterView', () => {
  it('has every kind of answer to show', () => {
    expect(served.map(c => c.answer.kind).sort()).toEqual(['local', 'local', 'local', 'scheduler']);
    expect(served.filter(c => c.answer.note).length).toBe(1);
  });

  it.each(served.map(c => [c.name, c.answer] as [string, IClusterInfo]))('shows the words of the server for %s', (_, info) => {
    const html = shown(info);
    expect(html).toContain(`<div class="bnb-Cluster-description">${escaped(info.description)}</div>`);
    expect(html).toContain(`data-kind="${info.kind}"`);
    // what the sidebar once said of its own, and was wrong about
    expect(html).not.toContain('processes on this machine');
  });

  it('adds nothing to a local cluster but the note', () => {
    for (const { answer } of served.filter(c => c.answer.kind === 'local')) {
      expect(textOf(shown(answer))).toBe([answer.description, answer.note].filter(Boolean).join(' ').replace(/\s+/g, ' '));
    }
  });

  it("links a scheduler's dashboard, and says when there is none", () => {
    const scheduler = served.find(c => c.answer.kind === 'scheduler')!.answer;
    expect(shown(scheduler)).toContain(`<a href="${scheduler.dashboard}" target="_blank" rel="noreferrer">Dask dashboard</a>`);
    expect(shown({ ...scheduler, dashboard: null })).toContain('The scheduler does not answer, or has no dashboard.');
  });

  it('lists the running jobs with their dashboards', () => {
    const local = served[0].answer;
    const html = shown({
      ...local,
      running: [
        { id: 'j1', name: 'upper', dashboard: 'http://127.0.0.1:41000/status' },
        { id: 'j2', name: '', dashboard: null }
      ]
    });
    expect(html).toContain('<li>upper: <a href="http://127.0.0.1:41000/status"');
    expect(html).toContain('<li>j2: no dashboard</li>');
  });
});
