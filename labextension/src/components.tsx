/**
 * One partitioner, app or assembler in the sidebar's Components section: its
 * name, its summary, and (opened) the rest of its doc and its params. Docs and
 * descriptions arrive from the server as plain text and are shown as text
 * nodes, never as markup.
 */

import React, { useState } from 'react';

import { docParagraphs, IComponent, paramType } from './model';

/** A component of the catalog, its doc and params shown when opened. */
export function ComponentEntry(props: { component: IComponent; open?: boolean }): JSX.Element {
  const { component } = props;
  const [open, setOpen] = useState(props.open ?? false);
  const properties = Object.entries((component.schema.properties ?? {}) as { [key: string]: any });
  return (
    <li className="bnb-Component" data-component={`${component.kind}:${component.name}`}>
      <button className="bnb-Component-name" aria-expanded={open} onClick={() => setOpen(!open)}>
        {component.name}
        {component.origin !== 'builtin' && <span className="bnb-Component-origin"> [{component.origin}]</span>}
      </button>
      {component.summary && <div className="bnb-Component-summary">{component.summary}</div>}
      {open && (
        <div className="bnb-Component-doc">
          {docParagraphs(component.doc).map((paragraph, i) => (
            <p key={i}>{paragraph}</p>
          ))}
          {properties.length ? (
            <dl className="bnb-Params">
              {properties.map(([name, prop]) => (
                <React.Fragment key={name}>
                  <dt>
                    <code>{name}</code> <span className="bnb-Muted">{paramType(prop)}</span>
                  </dt>
                  <dd>{prop.description ?? ''}</dd>
                </React.Fragment>
              ))}
            </dl>
          ) : (
            <div className="bnb-Muted">No params.</div>
          )}
        </div>
      )}
    </li>
  );
}
