/**
 * The job editor: a job file (`*.bnjob.json`) as a form generated from the
 * components' JSON Schemas, a diagram of the pipeline, Validate / Plan / Run,
 * and the raw JSON beside it. Form and raw JSON edit the same document model,
 * so each follows the other.
 */

import { CodeEditorWrapper, IEditorServices } from '@jupyterlab/codeeditor';
import { ABCWidgetFactory, DocumentRegistry, DocumentWidget } from '@jupyterlab/docregistry';
import { FormComponent, ReactWidget, ToolbarButton } from '@jupyterlab/ui-components';
import { SplitPanel, Widget } from '@lumino/widgets';
import validator from '@rjsf/validator-ajv8';
import React from 'react';

import { api, ApiError, PLAN_PAGE_SIZE } from './api';
import { Pager } from './jobdetail';
import {
  buildJobSchema,
  formatSize,
  ICatalog,
  IFieldError,
  IPlan,
  IPlanSample,
  IStep,
  JSONObject,
  LatestOnly,
  parseJobText,
  pipelineSteps,
  sameJob,
  serializeJob,
  shownPictures,
  stepsWithErrors,
  toExtraErrors
} from './model';

let catalogRequest: Promise<ICatalog> | null = null;

/** The components catalog, asked of the server once per page. */
export function loadCatalog(): Promise<ICatalog> {
  if (!catalogRequest) {
    catalogRequest = api.components().catch(error => {
      catalogRequest = null; // ask again next time
      throw error;
    });
  }
  return catalogRequest;
}

/** What the editor needs from the rest of the extension. */
export interface IEditorHooks {
  /** The cluster name jobs run on by default (an address, gateway:NAME...; "" for the server's default). */
  defaultCluster(): string;
  /** A job was submitted. */
  submitted(jobId: string): void;
}

type Status = { kind: 'info' | 'ok' | 'error' | 'busy'; text: string } | null;

let editorCount = 0;

/** The first rows (or lines, or file names) of a plan's first chunk, or the pictures of a media plan. */
function PlanSample(props: { sample: IPlanSample }): JSX.Element {
  const s = props.sample;
  let body: JSX.Element;
  let title: string;
  if (s.kind === 'table') {
    title = `First rows of chunk ${s.chunk} (${s.format ?? 'table'})`;
    body = (
      <table className="bnb-SampleTable">
        <thead>
          <tr>
            {(s.columns ?? []).map((c, i) => (
              <th key={i}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {(s.rows ?? []).map((row, i) => (
            <tr key={i}>
              {row.map((v, j) => (
                <td key={j}>{v}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    );
  } else if (s.kind === 'text') {
    title = `First lines of chunk ${s.chunk}`;
    body = <pre>{(s.lines ?? []).join('\n')}</pre>;
  } else if (s.kind === 'files') {
    title = `Chunk ${s.chunk}: an archive of ${s.count ?? 0} file(s)`;
    body = (
      <ul>
        {(s.names ?? []).map((n, i) => (
          <li key={i}>
            <code>{n}</code>
          </li>
        ))}
      </ul>
    );
  } else if (s.kind === 'media') {
    title = s.heading ? s.heading.charAt(0).toUpperCase() + s.heading.slice(1) : 'Media';
    body = (
      <div className="bnb-PlanPictures" data-media={s.media}>
        {shownPictures(s).map((p, i) => (
          <figure key={i} className="bnb-PlanPicture">
            <img src={p.src} width={p.width} height={p.height} alt={p.caption} title={p.caption} />
            <figcaption>{p.caption}</figcaption>
          </figure>
        ))}
      </div>
    );
  } else if (s.kind === 'error') {
    title = `Chunk ${s.chunk} could not be read for a preview`;
    body = <div className="bnb-Error">{s.error}</div>;
  } else {
    title = `Chunk ${s.chunk}: binary data`;
    body = <div className="bnb-Muted">{formatSize(s.size ?? null)}</div>;
  }
  return (
    <div className="bnb-PlanSample" data-kind={s.kind}>
      <div className="bnb-Muted">{title}</div>
      {s.note && <div className="bnb-Muted">{s.note}</div>}
      {body}
    </div>
  );
}

function PipelineDiagram(props: { job: JSONObject; marked: Set<IStep['key']>; idPrefix: string }): JSX.Element {
  const steps = pipelineSteps(props.job);
  return (
    <div className="bnb-Pipeline" role="list" aria-label="Pipeline">
      {steps.map((step, i) => (
        <React.Fragment key={step.key}>
          {i > 0 && <span className="bnb-Pipeline-arrow">→</span>}
          <button
            role="listitem"
            className={`bnb-Step${props.marked.has(step.key) ? ' bnb-Step-error' : ''}`}
            data-step={step.key}
            title={`Go to ${step.title}`}
            onClick={() => document.getElementById(`${props.idPrefix}_${step.key}`)?.scrollIntoView({ block: 'center' })}
          >
            <span className="bnb-Step-title">{step.title}</span>
            <span className="bnb-Step-label">{step.label}</span>
          </button>
        </React.Fragment>
      ))}
    </div>
  );
}

/** The form side: diagram, status, field errors, plan preview, and the form. */
class JobFormPanel extends ReactWidget {
  catalog: ICatalog | null = null;
  catalogError: string | null = null;
  job: JSONObject = {};
  parseError: string | null = null;
  errors: IFieldError[] = [];
  status: Status = null;
  plan: IPlan | null = null;
  readonly idPrefix = `bnbjob${++editorCount}`;

  constructor(
    private readonly onFormChange: (job: JSONObject) => void,
    private readonly onPlanPage: (offset: number) => void = () => undefined
  ) {
    super();
    this.addClass('bnb-JobForm');
  }

  render(): JSX.Element {
    const marked = stepsWithErrors(this.errors);
    return (
      <div className="bnb-JobForm-body">
        <div className="bnb-JobForm-head">
          <PipelineDiagram job={this.job} marked={marked} idPrefix={this.idPrefix} />
          {this.status && (
            <div className={`bnb-EditorStatus bnb-EditorStatus-${this.status.kind}`} data-status={this.status.kind}>
              {this.status.text}
            </div>
          )}
          {this.errors.length > 0 && (
            <ul className="bnb-FieldErrors">
              {this.errors.map((e, i) => (
                <li key={i} data-field={e.field}>
                  <code>{e.field || 'job'}</code>: {e.message}
                </li>
              ))}
            </ul>
          )}
          {this.plan && (
            <div className="bnb-Plan">
              <table className="bnb-Chunks">
                <thead>
                  <tr>
                    <th>#</th>
                    <th>size</th>
                    <th>covers</th>
                    <th>details</th>
                  </tr>
                </thead>
                <tbody>
                  {this.plan.chunks.map(c => (
                    <tr key={c.index} data-chunk={c.index}>
                      <td>{c.index}</td>
                      <td>{formatSize(c.size)}</td>
                      <td>{c.covers}</td>
                      <td className="bnb-ChunkDetails">{c.details ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {this.plan.truncated && (
                <Pager
                  page={{ offset: this.plan.offset ?? 0, limit: PLAN_PAGE_SIZE, total: this.plan.count }}
                  go={offset => this.onPlanPage(offset)}
                />
              )}
              {this.plan.sample && <PlanSample sample={this.plan.sample} />}
            </div>
          )}
        </div>
        {this.parseError && (
          <div className="bnb-Error" data-status="parse-error">
            The raw JSON is {this.parseError}. The form shows the last valid job until it is fixed.
          </div>
        )}
        {this.catalogError && <div className="bnb-Error">Cannot load the components: {this.catalogError}</div>}
        {this.catalog && this.renderForm()}
      </div>
    );
  }

  private renderForm(): JSX.Element {
    const { schema, uiSchema } = buildJobSchema(this.catalog!, this.job);
    return (
      <FormComponent
        schema={schema}
        uiSchema={uiSchema}
        formData={this.job}
        idPrefix={this.idPrefix}
        validator={validator as any}
        extraErrors={toExtraErrors(this.errors.filter(e => e.field))}
        liveValidate={false}
        noHtml5Validate={true}
        showErrorList={false}
        disabled={this.parseError !== null}
        onChange={event => this.onFormChange((event.formData ?? {}) as JSONObject)}
      />
    );
  }
}

/** The job editor: the form panel and the raw JSON, over one document. */
export class JobEditor extends SplitPanel {
  readonly form: JobFormPanel;
  readonly raw: CodeEditorWrapper;
  private submitting = false;
  /** The pages of the plan asked for: only the last one asked is shown. */
  private readonly planPages = new LatestOnly();
  /** The cluster Run submits to, as chosen in the toolbar ("" for the default). */
  cluster: () => string = () => '';

  constructor(
    readonly context: DocumentRegistry.CodeContext,
    editorServices: IEditorServices,
    private readonly hooks: IEditorHooks
  ) {
    super({ orientation: 'horizontal', spacing: 4 });
    this.addClass('bnb-JobEditor');
    this.form = new JobFormPanel(
      job => this.formChanged(job),
      offset => void this.planChunks(offset, true)
    );
    context.model.mimeType = 'application/json';
    this.raw = new CodeEditorWrapper({
      factory: editorServices.factoryService.newDocumentEditor,
      model: context.model,
      editorOptions: { config: { lineNumbers: true } }
    });
    this.raw.addClass('bnb-RawJSON');
    this.addWidget(this.form);
    this.addWidget(this.raw);
    this.setRelativeSizes([3, 2]);
    loadCatalog().then(
      catalog => {
        this.form.catalog = catalog;
        this.form.update();
      },
      error => {
        this.form.catalogError = String(error.message ?? error);
        this.form.update();
      }
    );
    void context.ready.then(() => {
      this.textChanged();
      context.model.contentChanged.connect(this.textChanged, this);
    });
  }

  /** Show or hide the raw JSON. */
  toggleRaw(): void {
    this.raw.setHidden(!this.raw.isHidden);
  }

  /** The raw text changed (typed there, loaded, or written by the form). */
  private textChanged(): void {
    const parsed = parseJobText(this.context.model.sharedModel.getSource());
    if (!parsed.ok) {
      this.form.parseError = parsed.message;
    } else {
      this.form.parseError = null;
      if (!sameJob(parsed.job, this.form.job)) {
        this.form.job = parsed.job;
      }
    }
    this.form.update();
  }

  /** The form changed: write the job back as the document's text. */
  private formChanged(job: JSONObject): void {
    if (this.form.parseError !== null || sameJob(job, this.form.job)) {
      return;
    }
    this.form.job = job;
    this.context.model.sharedModel.setSource(serializeJob(job));
    this.form.update();
  }

  private setStatus(status: Status, errors: IFieldError[] = [], plan: IPlan | null = null): void {
    this.form.status = status;
    this.form.errors = errors;
    this.form.plan = plan;
    this.form.update();
  }

  private failed(error: unknown): void {
    if (error instanceof ApiError) {
      const count = error.errors.length;
      const text = count > 1 ? `${count} problems: ${error.message.split('\n')[0]}` : error.message;
      this.setStatus({ kind: 'error', text }, error.errors);
    } else {
      this.setStatus({ kind: 'error', text: String((error as Error).message ?? error) });
    }
  }

  /** Validate the job on the server (components, params, storage). */
  async validate(): Promise<void> {
    this.setStatus({ kind: 'busy', text: 'Validating…' });
    try {
      const v = await api.validate(this.form.job, this.context.path);
      this.setStatus({
        kind: 'ok',
        text: `Valid: ${v.partitioner} → ${v.app} → ${v.assembler}; ${v.files} source file(s); output to ${v.destination}`
      });
    } catch (error) {
      this.failed(error);
    }
  }

  /** Show the chunks the partitioner would make, a page from the `offset`-th;
   * `pageMove`: the page shown stays until the next one comes (the panel keeps its place). */
  async planChunks(offset = 0, pageMove = false): Promise<void> {
    this.setStatus({ kind: 'busy', text: 'Planning…' }, [], pageMove ? this.form.plan : null);
    try {
      const answer = await this.planPages.answer(() => api.plan(this.form.job, this.context.path, offset));
      if (answer === null) {
        return; // a later page was asked for while this one loaded: that one is shown
      }
      const plan = answer.value;
      this.setStatus(
        { kind: 'ok', text: `Plan: ${plan.count} chunk(s), ${formatSize(plan.totalSize)} in all` },
        [],
        plan
      );
    } catch (error) {
      this.failed(error);
    }
  }

  /** Save the job file and run it in a job process of its own (once, however often Run is clicked meanwhile). */
  async run(): Promise<void> {
    if (this.submitting) {
      return;
    }
    this.submitting = true;
    this.setStatus({ kind: 'busy', text: 'Starting…' });
    try {
      if (this.context.model.dirty) {
        await this.context.save();
      }
      const job = await api.submit(this.form.job, this.context.path, this.cluster() || this.hooks.defaultCluster() || null);
      this.setStatus({ kind: 'ok', text: `Started job ${job.id}: follow it in the ByteNite sidebar.` });
      this.hooks.submitted(job.id);
    } catch (error) {
      this.failed(error);
    } finally {
      this.submitting = false;
    }
  }
}

/**
 * The toolbar's cluster choice: the names a job may run on, as the server
 * lists them (`GET /bytenite-nb/clusters`: local, sync, gateway, gateway:NAME,
 * kubernetes, kubernetes:NAME...), the default setting first. Listed again
 * each time it is opened, since clusters come and go.
 */
export class ClusterChoice extends Widget {
  constructor(private readonly defaultCluster: () => string) {
    super({ node: document.createElement('select') });
    this.addClass('bnb-ClusterChoice');
    this.node.title = 'The cluster Run submits the job to';
    this.node.setAttribute('aria-label', 'Cluster');
    this.node.addEventListener('mousedown', () => void this.load());
    this.node.addEventListener('focus', () => void this.load());
    void this.load();
  }

  private get select(): HTMLSelectElement {
    return this.node as HTMLSelectElement;
  }

  /** The chosen cluster name ("" for the default). */
  get value(): string {
    return this.select.value;
  }

  private async load(): Promise<void> {
    const chosen = this.select.value;
    const fallback = this.defaultCluster();
    try {
      const list = await api.clusters(fallback || null);
      // "": what the server resolves with nothing named (the default setting, Dask config, ...)
      const choices = [{ value: '', label: 'default cluster' }, ...list.choices];
      const options = choices.map(c => {
        const option = document.createElement('option');
        option.value = c.value;
        option.textContent = c.label;
        return option;
      });
      this.select.replaceChildren(...options);
      if (choices.some(c => c.value === chosen)) {
        this.select.value = chosen;
      }
    } catch (e) {
      this.select.title = `The clusters cannot be listed: ${(e as Error).message ?? e}`;
    }
  }
}

/** The document widget of a job file. */
export class JobEditorDocument extends DocumentWidget<JobEditor, DocumentRegistry.ICodeModel> {}

/** Makes job editors for `.bnjob.json` files. */
export class JobEditorFactory extends ABCWidgetFactory<JobEditorDocument, DocumentRegistry.ICodeModel> {
  constructor(
    options: DocumentRegistry.IWidgetFactoryOptions<JobEditorDocument>,
    private readonly editorServices: IEditorServices,
    private readonly hooks: IEditorHooks
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.CodeContext): JobEditorDocument {
    const content = new JobEditor(context, this.editorServices, this.hooks);
    const widget = new JobEditorDocument({ content, context });
    widget.addClass('bnb-JobEditorDocument');
    const button = (name: string, label: string, tooltip: string, onClick: () => void) =>
      widget.toolbar.addItem(name, new ToolbarButton({ label, tooltip, onClick, className: `bnb-Toolbar-${name}` }));
    button('validate', 'Validate', 'Check the job: components, params, storage', () => void content.validate());
    button('plan', 'Plan', 'Show the chunks the partitioner makes (no app runs)', () => void content.planChunks());
    const choice = new ClusterChoice(() => this.hooks.defaultCluster());
    content.cluster = () => choice.value;
    widget.toolbar.addItem('cluster', choice);
    button('run', 'Run', 'Save and run the job; it keeps running if this page closes', () => void content.run());
    button('raw', 'Raw JSON', 'Show or hide the raw JSON', () => content.toggleRaw());
    return widget;
  }
}
