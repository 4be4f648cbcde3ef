/**
 * The sidebar's component entries: docs and descriptions shown as the plain
 * text the server sends, as text (never as markup).
 */

import * as fs from 'fs';
import * as path from 'path';

import React from 'react';

import { ComponentEntry } from '../src/components';
import { docParagraphs, IComponent, paramType } from '../src/model';

// react-dom ships no type declarations here; its server renderer needs no DOM
const { renderToStaticMarkup } = require('react-dom/server') as { renderToStaticMarkup: (e: React.ReactElement) => string };

/** A doc as the server sends it: the docstring through bytenite_nb.plaintext.plain_text. */
const files: IComponent = {
  kind: 'partitioner',
  name: 'files',
  summary: 'One chunk per matching file of the source, or files_per_chunk files per chunk.',
  doc:
    'One chunk per matching file of the source, or files_per_chunk files per chunk.\n\n' +
    'pattern keeps only the files whose name matches a glob such as *.csv;\n' +
    'names like <b>x</b> stay text.',
  origin: 'builtin',
  schema: {
    type: 'object',
    properties: {
      files_per_chunk: { type: 'integer', default: 1, description: 'Files per chunk (a zip of them when more than one).' },
      pattern: { type: ['string', 'null'], description: 'Keep the files whose name matches this glob, e.g. *.csv.' }
    }
  }
};

/** The built-in identity app as the server serves it (tests/test_server.py keeps this file up to date). */
const identity: IComponent = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'component-schemas.json'), 'utf8')
).identity;

describe('ComponentEntry', () => {
  it('shows a served doc, written in reST, without its markup', () => {
    const html = renderToStaticMarkup(React.createElement(ComponentEntry, { component: identity, open: true }));
    expect(html).toContain('The chunk, unchanged, as the result (result.bin): the identity map.');
    expect(html).toContain('<p>A hard link when the chunk and the results share a filesystem');
    expect(html).not.toContain('`');
    expect(html).toContain('<code>output_name</code> <span class="bnb-Muted">string, default &quot;result.bin&quot;</span>');
  });

  it('shows the summary, the rest of the doc and every param as text', () => {
    const html = renderToStaticMarkup(React.createElement(ComponentEntry, { component: files, open: true }));
    expect(html).toContain('<div class="bnb-Component-summary">One chunk per matching file of the source, or files_per_chunk');
    expect(html).toContain('<p>pattern keeps only the files whose name matches a glob such as *.csv; names like');
    // markup in a doc is shown, not interpreted
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt; stay text.');
    expect(html).not.toContain('<b>');
    expect(html).not.toContain('``');
    expect(html).toContain('<code>files_per_chunk</code> <span class="bnb-Muted">integer, default 1</span>');
    expect(html).toContain('<dd>Keep the files whose name matches this glob, e.g. *.csv.</dd>');
  });

  it('keeps the doc folded until opened', () => {
    const html = renderToStaticMarkup(React.createElement(ComponentEntry, { component: files }));
    expect(html).toContain('aria-expanded="false"');
    expect(html).not.toContain('bnb-Component-doc');
  });
});

describe('docParagraphs', () => {
  it('leaves out the summary and joins each paragraph\'s lines', () => {
    expect(docParagraphs('Summary.\n\nFirst\nparagraph.\n  \nSecond.')).toEqual(['First paragraph.', 'Second.']);
    expect(docParagraphs('')).toEqual([]);
  });
});

describe('paramType', () => {
  it('reads a type, a union, an enum and a default', () => {
    expect(paramType({ type: 'integer', default: 4 })).toBe('integer, default 4');
    expect(paramType({ type: ['string', 'null'] })).toBe('string|null');
    expect(paramType({ enum: ['a', 'b'] })).toBe('enum');
    expect(paramType({ anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] })).toBe(
      'string|array'
    );
  });
});
