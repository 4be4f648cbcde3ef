/**
 * The job model as the extension sees it: the shapes the server sends, the
 * JSON Schema the job form is generated from, the pipeline diagram's steps
 * and the small formatting rules of the sidebar.
 *
 * Nothing here touches JupyterLab or the DOM, so it is tested with Jest alone.
 */

/** A JSON value. */
export type JSONValue = string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };
/** A JSON object. */
export type JSONObject = { [key: string]: JSONValue };
/** A JSON Schema (loosely typed: component schemas are arbitrary). */
export type Schema = { [key: string]: any };

/** A partitioner, app or assembler from `GET /bytenite-nb/components`. */
export interface IComponent {
  kind: 'partitioner' | 'app' | 'assembler';
  name: string;
  summary: string;
  doc: string;
  schema: Schema;
  origin: string;
}

/** The catalog: `GET /bytenite-nb/components`. */
export interface ICatalog {
  partitioner: IComponent[];
  app: IComponent[];
  assembler: IComponent[];
  /** Keys an `app` object may use: `command`, `python`, `folder`, `image`, `notebook`, ... */
  runtimes: string[];
  /** The JSON Schema of each runtime's `app` object, by runtime key: the app forms are made from these. */
  runtimeSchemas: { [runtime: string]: Schema };
  /** The schema of a job's `config`. */
  config: Schema;
  /** `dataSourceDescriptor` values: `file`, `s3`, `bypass`, ... */
  descriptors: string[];
  /** The JSON Schema of each descriptor object, by descriptor: the location forms are made from these. */
  descriptorSchemas: { [descriptor: string]: Schema };
  /** The descriptors a destination may name. */
  destinationDescriptors: string[];
  /** The schema of `{"folder": ..., "container": ...}` where a job names a partitioner or assembler folder. */
  engineFolderSchema?: Schema;
  /** The library's rule for key names that hold credentials (a regular expression, case-insensitive). */
  secretNamePattern: string;
}

/**
 * How many of a job's chunks are in each state, as the server counts them
 * (`bytenite_nb.states.Progress`): every chunk is in exactly one category, so
 * the categories add up to `total`. The extension shows these numbers as they
 * come; it never works one out from the others.
 */
export interface IProgress {
  total: number;
  /** Planned; no attempt under way yet. */
  pending: number;
  /** An attempt is under way. */
  running: number;
  /** An attempt failed; waiting to try again. */
  retrying: number;
  done: number;
  failed: number;
  cancelled: number;
  /** Not a category: how many of the done chunks an earlier run of the job committed. */
  resumed: number;
}

/** The categories of a job's progress, in the order the server's states go. */
export const PROGRESS_CATEGORIES = ['pending', 'running', 'retrying', 'done', 'failed', 'cancelled'] as const;
/** One category of a job's progress. */
export type ProgressCategory = (typeof PROGRESS_CATEGORIES)[number];
/** The order a progress text names the categories in after `done`, as the library's own text does. */
const SUMMARY_ORDER: ProgressCategory[] = ['failed', 'cancelled', 'retrying', 'running', 'pending'];

/** A job in the jobs list: `GET /bytenite-nb/jobs`. */
export interface IJobSummary {
  id: string;
  name: string | null;
  state: string;
  created: number | null;
  updated: number | null;
  started: number | null;
  finished: number | null;
  duration: number | null;
  error: string | null;
  runs: number;
  pid: number | null;
  host: string | null;
  progress: IProgress;
  destination: string | null;
  /** The destination relative to the Jupyter root, when it is a local folder inside it. */
  destinationPath: string | null;
  outputs: { name: string; url: string; size: number; path: string | null }[];
  startedFrom: 'jupyterlab' | 'elsewhere';
  jobFile: string | null;
  scheduler: string | null;
  /** Where the server said the job would run when it was submitted, in its words (null if started elsewhere). */
  runsOn: string | null;
  canRerun: boolean;
  canCancel: boolean;
  /** COMPLETE without this many failed chunks (minSuccessRatio); a rerun runs them. */
  failedChunks?: number;
}

/** One chunk of a job. */
export interface IChunk {
  index: number;
  state: string;
  attempts: number;
  duration: number | null;
  size: number | null;
  covers: string | null;
  error: string | null;
}

/** Which chunks of a job's detail are in `chunks`. */
export interface IChunkPage {
  offset: number;
  limit: number;
  /** How many chunks the pages cover: all but the failed, retrying and running ones. */
  total: number;
}

/** One job with its chunks: `GET /bytenite-nb/jobs/ID?offset=&limit=`. */
export interface IJobDetail extends IJobSummary {
  /** The failed, retrying and running chunks (the first few hundred of them). */
  attention: IChunk[];
  /** How many chunks failed, or are retrying or running. */
  attentionTotal: number;
  /** A page of the other chunks (pending, done, cancelled), by index. */
  chunks: IChunk[];
  chunkPage: IChunkPage;
  spec: JSONObject | null;
  log: string;
  cluster: {
    kind?: string;
    name?: string | null;
    shared?: boolean;
    scheduler?: string | null;
    dashboard?: string | null;
  } | null;
}

/** One field error, as the library reports it. */
export interface IFieldError {
  field: string;
  message: string;
}

/** `GET /bytenite-nb/cluster`. */
export interface IClusterInfo {
  kind: 'local' | 'scheduler' | 'gateway' | 'kubernetes';
  address: string | null;
  source: string;
  /** Where jobs run, in the server's words: the sidebar shows them as they are. */
  description: string;
  dashboard?: string | null;
  /** Something about the configuration the user should know (a Dask Gateway that is not used...). */
  note?: string;
  running: { id: string; name: string; kind?: string; scheduler?: string | null; dashboard?: string | null }[];
}

/** One picture of a media plan's preview (a tile, a waveform, a strip of frames). */
export interface IPlanPicture {
  /** A `data:image/...` URL. */
  src: string;
  caption: string;
  width: number;
  height: number;
}

/** The start of a plan's first chunk, as its app will see it; for media, pictures of the plan. */
export interface IPlanSample {
  chunk: number;
  kind: 'table' | 'text' | 'files' | 'binary' | 'error' | 'media';
  /** `media`: what the pictures show (`image`, `audio`, `video`), a heading and the pictures. */
  media?: string;
  heading?: string;
  pictures?: IPlanPicture[];
  format?: string;
  columns?: string[];
  rows?: string[][];
  lines?: string[];
  names?: string[];
  count?: number;
  size?: number | null;
  note?: string;
  error?: string;
}

/**
 * The pictures of a media sample the editor shows: those whose source is an
 * inline image (`data:image/...`), never a link that would make the page load
 * something from elsewhere.
 */
export function shownPictures(sample: IPlanSample): IPlanPicture[] {
  return (sample.pictures ?? []).filter(p => typeof p.src === 'string' && p.src.startsWith('data:image/'));
}

/** `POST /bytenite-nb/plan`. */
export interface IPlan {
  count: number;
  totalSize: number | null;
  /** The first chunk of this page of the plan. */
  offset?: number;
  truncated: boolean;
  /** `details`: what the chunk covers beyond its bytes (rows, window, key, section, files). */
  chunks: { index: number; size: number | null; covers: string; details?: string }[];
  sample?: IPlanSample | null;
}

/** `POST /bytenite-nb/validate`. */
export interface IValidation {
  valid: boolean;
  name: string;
  partitioner: string;
  app: string;
  assembler: string;
  source: string | null;
  destination: string | null;
  files: number;
}

/** States after which nothing changes any more. */
export const FINAL_STATES = ['COMPLETE', 'FAILED', 'CANCELLED'];

/** The suffix of job files; the editor opens these. */
export const JOB_FILE_SUFFIX = '.bnjob.json';

/** The content of a new job file. */
export function newJobTemplate(name = 'my-job'): JSONObject {
  return {
    name,
    dataSource: { dataSourceDescriptor: 'file', params: { path: 'data/' } },
    partitioner: 'split-lines',
    app: 'identity',
    assembler: 'concat',
    dataDestination: { dataSourceDescriptor: 'file', params: { path: 'out/' } },
    params: { partitioner: {}, app: {}, assembler: {} },
    config: { maxTaskRetries: 2 }
  };
}

// -- the job form ------------------------------------------------------------------

/** What the location forms are made from: the descriptors and their schemas, as served. */
export type ILocationCatalog = Pick<ICatalog, 'descriptors' | 'descriptorSchemas' | 'destinationDescriptors'>;

/** One descriptor's form: its served schema, with the descriptor itself filled in when picked. */
function descriptorForm(descriptor: string, served: Schema | undefined): Schema {
  const schema: Schema = served ?? {
    title: descriptor,
    type: 'object',
    properties: { params: { type: 'object', title: 'Where', additionalProperties: true } },
    required: ['dataSourceDescriptor']
  };
  const kind = { ...(schema.properties?.dataSourceDescriptor ?? {}), type: 'string', title: 'Kind', const: descriptor, default: descriptor };
  return { ...schema, properties: { ...schema.properties, dataSourceDescriptor: kind } };
}

/**
 * The schema of `dataSource` or `dataDestination`: a URL string, or one form
 * per ByteNite descriptor made from the schemas the server serves (only
 * the descriptors a destination may name, for a destination).
 */
export function locationSchema(title: string, catalog: ILocationCatalog, destination: boolean): Schema {
  const options: Schema[] = [
    {
      title: 'URL or path',
      type: 'string',
      description: 'An fsspec URL (s3://bucket/key, gs://..., az://...) or a local path relative to the job file.'
    }
  ];
  const names = destination
    ? catalog.destinationDescriptors ?? catalog.descriptors.filter(d => d !== 'url' && d !== 'bypass')
    : catalog.descriptors;
  for (const descriptor of names) {
    options.push(descriptorForm(descriptor, catalog.descriptorSchemas?.[descriptor]));
  }
  return { title, oneOf: options };
}

/** One runtime's form: its served schema (a plain one for a runtime the server gave none for). */
export function runtimeForm(key: string, served: Schema | undefined): Schema {
  if (served) {
    return { ...served, title: served.title ?? key };
  }
  return { title: key, type: 'object', properties: { [key]: { type: 'string', title: key } }, required: [key] };
}

/**
 * The schema of the `app` field: a registered app by name, an object of one
 * runtime (each runtime's form made from the schema the server serves for it),
 * or an app folder's path or tag.
 */
export function appSchema(catalog: ICatalog): Schema {
  const options: Schema[] = [];
  if (catalog.app.length) {
    options.push({
      title: 'Registered app',
      type: 'string',
      enum: catalog.app.map(c => c.name)
    });
  }
  for (const key of catalog.runtimes) {
    options.push(runtimeForm(key, catalog.runtimeSchemas?.[key]));
  }
  options.push({
    title: 'App folder path or tag',
    type: 'string',
    description: 'A ByteNite app folder (relative to the job file) or its tag: name, name@1, name@1.2.'
  });
  // anyOf: a registered name is also a string; the form shows the first that fits
  return { title: 'App', description: 'Runs on every chunk.', anyOf: options };
}

/**
 * A copy of a schema without `default` values, each one told in the
 * description instead: the form then never writes a value the user did not
 * choose into the job file.
 */
export function withoutDefaults(schema: Schema): Schema {
  if (Array.isArray(schema)) {
    return schema.map(withoutDefaults);
  }
  if (schema === null || typeof schema !== 'object') {
    return schema;
  }
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'default') {
      continue;
    }
    out[key] = value !== null && typeof value === 'object' ? withoutDefaults(value) : value;
  }
  if ('default' in schema && schema.default !== undefined && !('const' in schema)) {
    const told = `default: ${JSON.stringify(schema.default)}`;
    out.description = out.description ? `${out.description} (${told})` : told;
  }
  return out;
}

function componentSchema(catalog: ICatalog, kind: 'partitioner' | 'assembler' | 'app', name: JSONValue | undefined): Schema {
  if (typeof name === 'string') {
    const found = catalog[kind].find(c => c.name === name);
    if (found) {
      return found.schema;
    }
  } else if (kind === 'app' && name && typeof name === 'object' && !Array.isArray(name) && name.schema) {
    return name.schema as Schema;
  }
  return { type: 'object', additionalProperties: true };
}

/**
 * The JSON Schema of a job file for the form, with the params sections
 * following the components the job names now.
 */
export function buildJobSchema(catalog: ICatalog, job: JSONObject): { schema: Schema; uiSchema: Schema } {
  const names = (kind: 'partitioner' | 'assembler') => catalog[kind].map(c => c.name);
  const paramsOf = (kind: 'partitioner' | 'assembler' | 'app', title: string) => ({
    ...withoutDefaults(componentSchema(catalog, kind, job[kind] ?? (kind === 'app' ? undefined : 'passthrough'))),
    title
  });
  const schema: Schema = {
    type: 'object',
    title: 'Job',
    properties: {
      name: { type: 'string', title: 'Name' },
      description: { type: 'string', title: 'Description' },
      dataSource: locationSchema('Data source', catalog, false),
      partitioner: {
        type: 'string',
        title: 'Partitioner',
        description: 'Fans the source out into chunks.',
        enum: names('partitioner')
      },
      app: appSchema(catalog),
      assembler: {
        type: 'string',
        title: 'Assembler',
        description: 'Fans the chunk results in to the destination.',
        enum: names('assembler')
      },
      dataDestination: locationSchema('Data destination', catalog, true),
      params: {
        type: 'object',
        title: 'Params',
        properties: {
          partitioner: paramsOf('partitioner', 'Partitioner params'),
          app: paramsOf('app', 'App params'),
          assembler: paramsOf('assembler', 'Assembler params')
        }
      },
      config: { ...withoutDefaults(catalog.config), title: 'Config' },
      id: { type: 'string', title: 'Job id', description: 'Optional; the same id again resumes a run.' }
    }
  };
  const uiSchema: Schema = {
    'ui:order': ['name', 'description', 'dataSource', 'partitioner', 'app', 'assembler', 'dataDestination', 'params', 'config', '*'],
    description: { 'ui:widget': 'textarea', 'ui:options': { rows: 2 } },
    'ui:submitButtonOptions': { norender: true }
  };
  return { schema, uiSchema };
}

/**
 * Server field errors (`params.partitioner.chunk_size`) as the form's
 * `extraErrors`, so each message shows under its field.
 */
export function toExtraErrors(errors: IFieldError[]): Schema {
  const out: Schema = {};
  for (const error of errors) {
    let node = out;
    for (const part of error.field ? error.field.split('.') : []) {
      node[part] = node[part] ?? {};
      node = node[part];
    }
    node.__errors = [...(node.__errors ?? []), error.message];
  }
  return out;
}

// -- the pipeline diagram ------------------------------------------------------------

/** One box of the pipeline diagram. */
export interface IStep {
  key: 'dataSource' | 'partitioner' | 'app' | 'assembler' | 'dataDestination';
  title: string;
  label: string;
}

/** How a location reads in the diagram. */
export function describeLocation(value: JSONValue | undefined): string {
  if (value === undefined || value === null || value === '') {
    return 'not set';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'object' && !Array.isArray(value)) {
    const descriptor = String(value.dataSourceDescriptor ?? '?');
    const params = (value.params ?? {}) as JSONObject;
    if (descriptor === 'bypass') {
      return 'no data (bypass)';
    }
    if (descriptor === 'file') {
      return String(params.path ?? 'file: path not set');
    }
    if (descriptor === 'url') {
      return String(params.url ?? 'url not set');
    }
    const bucket = params.bucketName ?? params.bucket;
    const scheme = { aws: 's3', s3: 's3', gcp: 'gs', gcs: 'gs', azure: 'az' }[descriptor] ?? descriptor;
    return bucket ? `${scheme}://${bucket}/${params.name ?? params.path ?? ''}` : `${descriptor}: bucket not set`;
  }
  return JSON.stringify(value);
}

/** How an app reads in the diagram. */
export function describeApp(value: JSONValue | undefined): string {
  if (value === undefined || value === null || value === '') {
    return 'not set';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'object' && !Array.isArray(value)) {
    if (typeof value.image === 'string') {
      return `image: ${value.image}`;
    }
    if (Array.isArray(value.command)) {
      return value.command.join(' ');
    }
    for (const [key, inner] of Object.entries(value)) {
      if (typeof inner === 'string') {
        return `${key}: ${inner}`;
      }
    }
  }
  return JSON.stringify(value);
}

/** The five boxes: source -> partitioner -> app -> assembler -> destination. */
export function pipelineSteps(job: JSONObject): IStep[] {
  return [
    { key: 'dataSource', title: 'Source', label: describeLocation(job.dataSource) },
    { key: 'partitioner', title: 'Partitioner', label: String(job.partitioner ?? 'passthrough') },
    { key: 'app', title: 'App', label: describeApp(job.app) },
    { key: 'assembler', title: 'Assembler', label: String(job.assembler ?? 'passthrough') },
    { key: 'dataDestination', title: 'Destination', label: describeLocation(job.dataDestination) }
  ];
}

/** Which diagram boxes an error list concerns (`params.app.x` -> app). */
export function stepsWithErrors(errors: IFieldError[]): Set<IStep['key']> {
  const keys = new Set<IStep['key']>();
  for (const { field } of errors) {
    const [head, second] = field.split('.');
    if (head === 'dataSource' || head === 'dataDestination' || head === 'partitioner' || head === 'app' || head === 'assembler') {
      keys.add(head);
    } else if (head === 'params' && (second === 'partitioner' || second === 'app' || second === 'assembler')) {
      keys.add(second);
    }
  }
  return keys;
}

// -- the job file's text -----------------------------------------------------------------

/** The outcome of reading a job file's text. */
export type ParsedJob = { ok: true; job: JSONObject } | { ok: false; message: string };

/** Parse a job file; a message saying where the JSON is broken otherwise. */
export function parseJobText(text: string): ParsedJob {
  if (!text.trim()) {
    return { ok: true, job: {} };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, message: `not valid JSON: ${(error as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, message: 'a job file must hold a JSON object' };
  }
  return { ok: true, job: value as JSONObject };
}

/** The job file text for a job (2-space JSON, final newline). */
export function serializeJob(job: JSONObject): string {
  return JSON.stringify(dropUndefined(job), null, 2) + '\n';
}

function dropUndefined(value: any): any {
  if (Array.isArray(value)) {
    return value.map(dropUndefined);
  }
  if (value !== null && typeof value === 'object') {
    const out: any = {};
    for (const [key, inner] of Object.entries(value)) {
      if (inner !== undefined) {
        out[key] = dropUndefined(inner);
      }
    }
    return out;
  }
  return value;
}

/** Do two jobs say the same thing (key order aside)? */
export function sameJob(a: JSONValue | undefined, b: JSONValue | undefined): boolean {
  return canonical(dropUndefined(a)) === canonical(dropUndefined(b));
}

function canonical(value: any): string {
  if (Array.isArray(value)) {
    return `[${value.map(canonical).join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map(k => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

// -- the sidebar -------------------------------------------------------------------------

/**
 * A component's doc after its summary (its first paragraph, shown on its own),
 * one string per paragraph with its line breaks joined. The server sends docs
 * as plain text: they are shown as text, never as markup.
 */
export function docParagraphs(doc: string): string[] {
  return doc
    .split(/\n\s*\n/)
    .slice(1)
    .map(paragraph => paragraph.replace(/\s*\n\s*/g, ' ').trim())
    .filter(paragraph => paragraph.length > 0);
}

/** How a param's type reads in the sidebar: `integer, default 4`, `string|null`, `enum`. */
export function paramType(prop: Schema): string {
  return typeName(prop) + ('default' in prop ? `, default ${JSON.stringify(prop.default)}` : '');
}

/** The type a schema allows: its `type`, `enum`, or the types of its `anyOf`/`oneOf` choices. */
function typeName(prop: Schema): string {
  if (Array.isArray(prop.type)) {
    return prop.type.join('|');
  }
  if (prop.type) {
    return prop.type;
  }
  if (prop.enum) {
    return 'enum';
  }
  const choices = prop.anyOf ?? prop.oneOf;
  if (Array.isArray(choices)) {
    return [...new Set(choices.map(typeName).filter(name => name))].join('|');
  }
  return '';
}

/** "1.2 s", "3 min 04 s", "2 h 05 min"; "-" when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds < 0) {
    return '-';
  }
  if (seconds < 60) {
    return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`;
  }
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** "512 B", "1.5 KiB", ... */
export function formatSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) {
    return '?';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The segments of a job's progress bar: each category but pending, as a fraction of the total. */
export function progressParts(progress: IProgress): { [category in Exclude<ProgressCategory, 'pending'>]: number } {
  const part = (n: number) => (progress.total ? Math.min(1, Math.max(0, n / progress.total)) : 0);
  return {
    done: part(progress.done),
    failed: part(progress.failed),
    cancelled: part(progress.cancelled),
    retrying: part(progress.retrying),
    running: part(progress.running)
  };
}

/**
 * "12/40 done, 1 failed, 3 running, 24 pending": done of total, then every
 * other category that is not empty (the same text as the library's).
 */
export function progressText(progress: IProgress): string {
  const head = `${progress.done}/${progress.total} done` + (progress.resumed ? ` (${progress.resumed} resumed)` : '');
  return [head, ...SUMMARY_ORDER.filter(c => progress[c]).map(c => `${progress[c]} ${c}`)].join(', ');
}

/** "4 in all: 0 pending, 0 running, 0 retrying, 1 done, 1 failed, 2 cancelled": every category, none left out. */
export function progressBreakdown(progress: IProgress): string {
  const counts = PROGRESS_CATEGORIES.map(
    c => `${progress[c]} ${c}` + (c === 'done' && progress.resumed ? ` (${progress.resumed} resumed)` : '')
  );
  return `${progress.total} in all: ${counts.join(', ')}`;
}

/** Is the job still going? */
export function isActive(job: { state: string }): boolean {
  return !FINAL_STATES.includes(job.state);
}

/** The job file name without its suffix: `jobs/upper.bnjob.json` -> `upper`. */
export function jobStem(path: string): string {
  const base = path.split('/').pop() ?? path;
  return base.endsWith(JOB_FILE_SUFFIX) ? base.slice(0, -JOB_FILE_SUFFIX.length) : base.replace(/\.json$/, '');
}

/** "101–200 of 523": which chunks a page shows ("none" when there are none). */
export function pageLabel(page: IChunkPage): string {
  if (!page.total) {
    return 'none';
  }
  if (page.offset >= page.total) {
    return `none of ${page.total} here`;
  }
  return `${page.offset + 1}–${Math.min(page.offset + page.limit, page.total)} of ${page.total}`;
}

/** The offsets of the previous and next pages (null where there is none). */
export function pageMoves(page: IChunkPage): { previous: number | null; next: number | null } {
  return {
    previous: page.offset > 0 ? Math.max(0, Math.min(page.offset - page.limit, page.total - page.limit)) : null,
    next: page.offset + page.limit < page.total ? page.offset + page.limit : null
  };
}

/**
 * The offset of the page that starts at chunk `text` (a chunk number, from 0,
 * as typed in the pager's "From chunk"), kept within the chunks there are;
 * null when `text` is not a whole number.
 *
 * ```ts
 * pageFrom('1200', 2500); // 1200
 * pageFrom('9999', 2500); // 2499
 * ```
 */
export function pageFrom(text: string, total: number): number | null {
  const wanted = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(wanted)) {
    return null;
  }
  return Math.max(0, Math.min(wanted, total - 1));
}

/**
 * Request sequencing for answers that may come back out of order (a pager
 * clicked again before its page came): each request is numbered, and only the
 * latest one's answer, or error, is handed on; an earlier one's resolves to
 * null, so a slow older page never replaces a newer one.
 *
 * ```ts
 * const pages = new LatestOnly();
 * const answer = await pages.answer(() => api.plan(job, path, offset));
 * if (answer !== null) show(answer.value);
 * ```
 */
export class LatestOnly {
  private issued = 0;

  /** Start `request`; its answer, or null when a later request was started before it came. */
  async answer<T>(request: () => Promise<T>): Promise<{ value: T } | null> {
    const ticket = ++this.issued;
    try {
      const value = await request();
      return ticket === this.issued ? { value } : null;
    } catch (error) {
      if (ticket !== this.issued) {
        return null; // the error of a request no one waits for any more
      }
      throw error;
    }
  }
}

/**
 * Runs `tick` now and again every `intervalMs` for as long as it resolves to
 * true (a job's panel: while the job is active), never two at once; `kick()`
 * runs it now and starts over (after a rerun, a page change, the panel shown
 * again). A tick that throws counts as true: the server may be restarting.
 *
 * ```ts
 * const poller = new Poller(async () => isActive(await api.job(id)), 2000);
 * poller.kick();
 * ```
 */
export class Poller {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private busy = false;
  private again = false;
  private disposed = false;

  constructor(
    private readonly tick: () => Promise<boolean>,
    private readonly intervalMs: number
  ) {}

  /** Is a tick running or scheduled? */
  get polling(): boolean {
    return this.busy || this.timer !== null;
  }

  /** Run the tick now (or right after the one running), then keep polling while it says so. */
  kick(): void {
    if (this.disposed) {
      return;
    }
    if (this.busy) {
      this.again = true;
      return;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.busy = true;
    this.tick()
      .catch(() => true)
      .then(more => {
        this.busy = false;
        if (this.disposed) {
          return;
        }
        if (this.again) {
          this.again = false;
          this.kick();
        } else if (more) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.kick();
          }, this.intervalMs);
        }
      });
  }

  /** Stop for good. */
  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

/** A Dask Gateway or Kubernetes cluster the server sees: `GET /bytenite-nb/clusters`. */
export interface IClusterEntry {
  kind: 'gateway' | 'kubernetes';
  name: string;
  /** The cluster name a job is submitted with: `gateway:NAME`, `kubernetes:NAME`. */
  target: string;
  workers: number | null;
  status: string;
  dashboard: string | null;
  /** Made by this user: it may be scaled and shut down from here. */
  yours: boolean;
}

/** A cluster name a job may run on, with words for a person. */
export interface IClusterChoice {
  value: string;
  label: string;
}

/** `GET /bytenite-nb/clusters`. */
export interface IClusterList {
  clusters: IClusterEntry[];
  choices: IClusterChoice[];
  /** A source (a Gateway, Kubernetes) that could not be listed, in the server's words. */
  errors: { kind: string; message: string }[];
}

/** A page of a job's chunk grid: `GET /bytenite-nb/jobs/ID/chunks`. */
export interface IChunkGrid {
  total: number;
  offset: number;
  first: number | null;
  /** One letter per chunk, read with `legend`. */
  states: string;
  /** Per chunk, an index into `workerNames` (-1: no worker known). */
  workers: number[];
  workerNames: string[];
  legend: { [letter: string]: string };
}

/** One chunk with its attempts: `GET /bytenite-nb/jobs/ID/chunk?index=N`. */
export interface IChunkDetail extends IChunk {
  worker: string | null;
  history: { time: number; state: string; attempt: number | null; error: string | null; worker: string | null }[];
}

/** The colour of each chunk state in the grids (as the state badges). */
export const STATE_COLOURS: { [state: string]: string } = {
  PENDING: '#c8c8c8',
  RUNNING: '#2f80ed',
  RETRYING: '#f2994a',
  DONE: '#27ae60',
  FAILED: '#eb5757',
  CANCELLED: '#828282'
};

/** The cells per row of a grid `width` pixels wide with cells of `cell` pixels (at least one). */
export function gridColumns(width: number, cell: number): number {
  return Math.max(1, Math.floor(width / cell));
}

/**
 * The chunk (an index into the page's arrays) under the point `x`, `y` of a grid
 * of `columns` cells per row of `cell` pixels, or null off the cells.
 */
export function cellAt(x: number, y: number, columns: number, cell: number, count: number): number | null {
  if (x < 0 || y < 0) {
    return null;
  }
  const column = Math.floor(x / cell);
  const row = Math.floor(y / cell);
  if (column >= columns) {
    return null;
  }
  const at = row * columns + column;
  return at < count ? at : null;
}

/** How many chunks each worker ran (of those with a worker), most first. */
export function workerCounts(grid: IChunkGrid): { worker: string; chunks: number }[] {
  const counts = new Array(grid.workerNames.length).fill(0);
  for (const w of grid.workers) {
    if (w >= 0) {
      counts[w]++;
    }
  }
  return grid.workerNames.map((worker, i) => ({ worker, chunks: counts[i] })).sort((a, b) => b.chunks - a.chunks);
}
