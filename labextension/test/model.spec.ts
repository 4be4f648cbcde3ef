import * as fs from 'fs';
import * as path from 'path';

import { getClosestMatchingOption } from '@rjsf/utils';
import validator from '@rjsf/validator-ajv8';

import {
  appSchema,
  buildJobSchema,
  describeApp,
  describeLocation,
  formatDuration,
  formatSize,
  ICatalog,
  isActive,
  jobStem,
  LatestOnly,
  locationSchema,
  newJobTemplate,
  pageFrom,
  pageLabel,
  pageMoves,
  parseJobText,
  IProgress,
  Poller,
  pipelineSteps,
  PROGRESS_CATEGORIES,
  progressBreakdown,
  progressParts,
  progressText,
  sameJob,
  serializeJob,
  shownPictures,
  stepsWithErrors,
  toExtraErrors,
  withoutDefaults
} from '../src/model';
import progressFixture from './fixtures/progress.json';

/** Progress as the server sends it, from the same file the Python tests check the library against. */
const progressCases: { cases: { name: string; progress: IProgress; summary: string }[] } = progressFixture;

/** The runtime and descriptor schemas the server serves (tests/test_server.py keeps this file up to date). */
const served = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'component-schemas.json'), 'utf8'));

const catalog: ICatalog = {
  partitioner: [
    {
      kind: 'partitioner',
      name: 'split-lines',
      summary: 'Split text files',
      doc: 'Split text files',
      origin: 'builtin',
      schema: {
        type: 'object',
        properties: {
          chunk_size: { type: 'integer', minimum: 1 },
          read_ahead: { type: 'integer', default: 65536, description: 'Bytes read at a time.' }
        },
        additionalProperties: false
      }
    },
    { kind: 'partitioner', name: 'passthrough', summary: '', doc: '', origin: 'builtin', schema: { type: 'object' } }
  ],
  app: [
    {
      kind: 'app',
      name: 'identity',
      summary: '',
      doc: '',
      origin: 'builtin',
      schema: { type: 'object', properties: { suffix: { type: 'string' } } }
    }
  ],
  assembler: [
    {
      kind: 'assembler',
      name: 'concat',
      summary: '',
      doc: '',
      origin: 'builtin',
      schema: { type: 'object', properties: { output_name: { type: 'string' } } }
    }
  ],
  runtimes: served.runtimes,
  runtimeSchemas: served.runtimeSchemas,
  config: { type: 'object', properties: { maxTaskRetries: { type: 'integer', default: 2 } } },
  descriptors: served.descriptors,
  descriptorSchemas: served.descriptorSchemas,
  destinationDescriptors: served.destinationDescriptors,
  secretNamePattern: '(secret|^key$)'
};

describe('buildJobSchema', () => {
  it('offers the registered components by name', () => {
    const { schema } = buildJobSchema(catalog, newJobTemplate());
    expect(schema.properties.partitioner.enum).toEqual(['split-lines', 'passthrough']);
    expect(schema.properties.assembler.enum).toEqual(['concat']);
    expect(schema.properties.app.anyOf[0]).toEqual({ title: 'Registered app', type: 'string', enum: ['identity'] });
  });

  it('follows the chosen components in the params sections', () => {
    const { schema } = buildJobSchema(catalog, { partitioner: 'split-lines', app: 'identity', assembler: 'concat' });
    const params = schema.properties.params.properties;
    expect(Object.keys(params.partitioner.properties)).toEqual(['chunk_size', 'read_ahead']);
    expect(params.partitioner.additionalProperties).toBe(false);
    expect(params.app.properties.suffix.type).toBe('string');
    expect(params.assembler.properties.output_name.type).toBe('string');
  });

  it('uses an app object\'s own schema, and a free object for unknown components', () => {
    const app = { command: ['python3', 'app.py'], schema: { type: 'object', properties: { upper: { type: 'boolean' } } } };
    const { schema } = buildJobSchema(catalog, { partitioner: 'nope', app });
    expect(schema.properties.params.properties.app.properties.upper.type).toBe('boolean');
    expect(schema.properties.params.properties.partitioner.additionalProperties).toBe(true);
  });

  it('offers one app form per runtime, made from the schema the server serves for it', () => {
    const titles = buildJobSchema(catalog, {}).schema.properties.app.anyOf.map((o: any) => o.title);
    expect(titles).toEqual([
      'Registered app',
      'Command',
      'ByteNite app folder',
      'Container image',
      'Notebook',
      'Python function (module:function)',
      'App folder path or tag'
    ]);
    const forms = appSchema(catalog).anyOf;
    for (const key of catalog.runtimes) {
      expect(forms).toContainEqual(catalog.runtimeSchemas[key]);
    }
    // a runtime the server has no schema for gets a plain form
    const other = appSchema({ ...catalog, runtimes: [...catalog.runtimes, 'wasm'] }).anyOf;
    expect(other[other.length - 2]).toEqual({
      title: 'wasm',
      type: 'object',
      properties: { wasm: { type: 'string', title: 'wasm' } },
      required: ['wasm']
    });
  });

  it('lets a container app set its image, command, network and requirements, and a notebook app be set', () => {
    const forms = appSchema(catalog).anyOf;
    const image = forms.find((o: any) => o.title === 'Container image');
    expect(Object.keys(image.properties)).toEqual(expect.arrayContaining(['image', 'command', 'network', 'device_requirements']));
    expect(image.properties.network.type).toBe('boolean');
    expect(image.additionalProperties).toBe(false);
    const notebook = forms.find((o: any) => o.title === 'Notebook');
    expect(notebook.required).toEqual(['notebook']);
    expect(Object.keys(notebook.properties)).toEqual(expect.arrayContaining(['notebook', 'kernel']));
  });

  it('shows each app in the form of its own runtime', () => {
    const forms = appSchema(catalog).anyOf;
    const shown = (app: any) => forms[getClosestMatchingOption(validator as any, catalog.runtimeSchemas, app, forms, 0)].title;
    expect(shown('identity')).toBe('Registered app');
    expect(shown({ image: 'localhost/wc:1', command: ['wc', '-l'], network: true })).toBe('Container image');
    expect(shown({ command: ['python3', 'app.py'], cwd: 'apps' })).toBe('Command');
    expect(shown({ notebook: 'chunk.ipynb', kernel: 'python3' })).toBe('Notebook');
    expect(shown({ folder: 'apps/wc', container: false })).toBe('ByteNite app folder');
    expect(shown({ python: 'app.py:run' })).toBe('Python function (module:function)');
    expect(shown('wordcount@1')).toBe('App folder path or tag');
  });

  it('accepts exactly what each runtime accepts', () => {
    const check = (key: string, app: any) => validator.isValid(catalog.runtimeSchemas[key], app, catalog.runtimeSchemas[key]);
    expect(check('image', { image: 'localhost/wc:1', command: 'wc -l', device_requirements: { min_cpu: 2, gpu: ['A100'] } })).toBe(true);
    expect(check('command', { command: ['true'], cwdd: 'x' })).toBe(false); // a typo is not silently run
    expect(check('command', { image: 'localhost/wc:1', command: ['wc'] })).toBe(false); // that is a container app
    expect(check('folder', { folder: 'apps/x', contaner: false })).toBe(false);
    expect(check('notebook', { notebook: 'a.ipynb', kernel: '' })).toBe(false);
  });

  it('never lets the form write defaults the user did not choose', () => {
    const { schema } = buildJobSchema(catalog, newJobTemplate());
    const readAhead = schema.properties.params.properties.partitioner.properties.read_ahead;
    expect(readAhead.default).toBeUndefined();
    expect(readAhead.description).toBe('Bytes read at a time. (default: 65536)');
    expect(schema.properties.config.properties.maxTaskRetries.description).toBe('default: 2');
  });

  it('hides the submit button and orders the fields as the pipeline runs', () => {
    const { uiSchema } = buildJobSchema(catalog, {});
    expect(uiSchema['ui:submitButtonOptions']).toEqual({ norender: true });
    expect(uiSchema['ui:order'].slice(2, 7)).toEqual(['dataSource', 'partitioner', 'app', 'assembler', 'dataDestination']);
  });
});

describe('locationSchema', () => {
  it('offers a URL string or one descriptor form per kind, made from the served schemas', () => {
    const source = locationSchema('Data source', catalog, false);
    expect(source.oneOf.map((o: any) => o.title)).toEqual([
      'URL or path',
      ...catalog.descriptors.map(d => catalog.descriptorSchemas[d].title)
    ]);
    const file = source.oneOf.find((o: any) => o.properties?.dataSourceDescriptor?.const === 'file');
    expect(file.properties.params.required).toEqual(['path']);
    expect(file.properties.params.additionalProperties).toBe(false);
    // picking a form writes its descriptor
    expect(file.properties.dataSourceDescriptor).toMatchObject({ type: 'string', const: 'file', default: 'file' });
  });

  it('gives the two names of S3 and of GCS the same form', () => {
    const byName = (descriptor: string) =>
      locationSchema('Data source', { ...catalog, descriptors: [descriptor] }, false).oneOf[1] as { title: string; properties: any };
    for (const [one, other] of [
      ['s3', 'aws'],
      ['gcp', 'gcs']
    ]) {
      expect(byName(one).properties.params).toEqual(byName(other).properties.params);
      expect(byName(one).properties.dataSourceDescriptor.const).toBe(one);
      expect(byName(other).properties.dataSourceDescriptor.const).toBe(other);
      expect(byName(one).title).not.toEqual(byName(other).title);
    }
    expect(Object.keys(byName('aws').properties.params.properties)).toEqual(
      expect.arrayContaining(['bucketName', 'name', 'cloudRegion'])
    );
  });

  it('offers a destination only what can be written to', () => {
    const destination = locationSchema('Data destination', catalog, true);
    const kinds = destination.oneOf.slice(1).map((o: any) => o.properties.dataSourceDescriptor.const);
    expect(kinds).toEqual(catalog.destinationDescriptors);
    expect(kinds).not.toContain('url');
    expect(kinds).not.toContain('bypass');
  });

  it('refuses a descriptor with a key it does not know', () => {
    const s3 = catalog.descriptorSchemas.s3;
    expect(validator.isValid(s3, { dataSourceDescriptor: 's3', params: { bucketName: 'b', name: 'in/' } }, s3)).toBe(true);
    expect(validator.isValid(s3, { dataSourceDescriptor: 's3', params: { bucketName: 'b', nmae: 'in/' } }, s3)).toBe(false);
  });
});

describe('withoutDefaults', () => {
  it('keeps const defaults that pick a descriptor form, and nested structure', () => {
    const out = withoutDefaults({
      type: 'object',
      properties: { a: { type: 'array', items: [{ type: 'string', default: 'x' }] }, b: { const: 'file', default: 'file' } }
    });
    expect(out.properties.a.items[0]).toEqual({ type: 'string', description: 'default: "x"' });
    expect(out.properties.b).toEqual({ const: 'file' });
  });
});

describe('toExtraErrors', () => {
  it('puts every message under its field', () => {
    expect(
      toExtraErrors([
        { field: 'params.partitioner.chunk_size', message: 'expected integer, got "64k"' },
        { field: 'app', message: 'is required' },
        { field: 'app', message: 'twice' },
        { field: '', message: 'not valid JSON' }
      ])
    ).toEqual({
      params: { partitioner: { chunk_size: { __errors: ['expected integer, got "64k"'] } } },
      app: { __errors: ['is required', 'twice'] },
      __errors: ['not valid JSON']
    });
  });
});

describe('pipeline', () => {
  it('reads a job as five boxes', () => {
    const steps = pipelineSteps({
      dataSource: { dataSourceDescriptor: 's3', params: { bucketName: 'b', name: 'in/' } },
      partitioner: 'split-lines',
      app: { command: ['python3', 'app.py'] },
      dataDestination: 'out/'
    });
    expect(steps.map(s => s.label)).toEqual(['s3://b/in/', 'split-lines', 'python3 app.py', 'passthrough', 'out/']);
  });

  it('says what is missing', () => {
    expect(describeLocation(undefined)).toBe('not set');
    expect(describeLocation({ dataSourceDescriptor: 'file', params: {} })).toBe('file: path not set');
    expect(describeLocation({ dataSourceDescriptor: 'gcp', params: {} })).toBe('gcp: bucket not set');
    expect(describeLocation({ dataSourceDescriptor: 'bypass' })).toBe('no data (bypass)');
    expect(describeApp({ folder: 'apps/upper' })).toBe('folder: apps/upper');
    expect(describeApp({ image: 'localhost/wc:1', command: ['wc'] })).toBe('image: localhost/wc:1');
    expect(describeApp(null)).toBe('not set');
  });

  it('marks the boxes a validation error concerns', () => {
    const marked = stepsWithErrors([
      { field: 'params.app.x', message: '' },
      { field: 'dataSource.params.path', message: '' },
      { field: 'config.taskTimeout', message: '' }
    ]);
    expect([...marked].sort()).toEqual(['app', 'dataSource']);
  });
});

describe('job text', () => {
  it('parses objects and says where JSON is broken', () => {
    expect(parseJobText('{"name": "x"}')).toEqual({ ok: true, job: { name: 'x' } });
    expect(parseJobText('')).toEqual({ ok: true, job: {} });
    const broken = parseJobText('{"name": ');
    expect(broken.ok).toBe(false);
    expect(!broken.ok && broken.message).toMatch(/^not valid JSON: /);
    expect(parseJobText('[1]')).toEqual({ ok: false, message: 'a job file must hold a JSON object' });
  });

  it('round-trips a job and compares jobs whatever the key order', () => {
    const job = newJobTemplate('x');
    expect(parseJobText(serializeJob(job))).toEqual({ ok: true, job });
    expect(serializeJob({ a: 1, b: undefined } as any)).toBe('{\n  "a": 1\n}\n');
    expect(sameJob({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBe(true);
    expect(sameJob({ a: 1, b: undefined } as any, { a: 1 })).toBe(true);
    expect(sameJob({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
  });
});

describe('sidebar formatting', () => {
  it('formats durations and sizes', () => {
    expect(formatDuration(null)).toBe('-');
    expect(formatDuration(1.234)).toBe('1.2 s');
    expect(formatDuration(42.6)).toBe('43 s');
    expect(formatDuration(184)).toBe('3 min 04 s');
    expect(formatDuration(7500)).toBe('2 h 05 min');
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(null)).toBe('?');
  });

  it('splits the progress bar, a segment per category', () => {
    const progress = { total: 8, pending: 1, running: 1, retrying: 1, done: 2, failed: 1, cancelled: 2, resumed: 0 };
    expect(progressParts(progress)).toEqual({ done: 0.25, failed: 0.125, cancelled: 0.25, retrying: 0.125, running: 0.125 });
    expect(progressText(progress)).toBe('2/8 done, 1 failed, 2 cancelled, 1 retrying, 1 running, 1 pending');
    const none = { total: 0, pending: 0, running: 0, retrying: 0, done: 0, failed: 0, cancelled: 0, resumed: 0 };
    expect(progressParts(none)).toEqual({ done: 0, failed: 0, cancelled: 0, retrying: 0, running: 0 });
  });

  it("shows the server's counts as they are, never working one out", () => {
    // Counts that do not add up cannot come from the server; shown as they are, they prove nothing is recomputed.
    const odd = { total: 10, pending: 7, running: 0, retrying: 0, done: 1, failed: 1, cancelled: 0, resumed: 0 };
    expect(progressText(odd)).toBe('1/10 done, 1 failed, 7 pending');
    expect(progressBreakdown(odd)).toBe('10 in all: 7 pending, 0 running, 0 retrying, 1 done, 1 failed, 0 cancelled');
  });

  describe.each(progressCases.cases)('a progress from the server: $name', ({ progress, summary }) => {
    it('reads as the library says it', () => {
      expect(progressText(progress)).toBe(summary);
    });
    it('lists every category with the count the server sent', () => {
      const text = progressBreakdown(progress);
      for (const category of PROGRESS_CATEGORIES) {
        expect(text).toContain(`${progress[category]} ${category}`);
      }
      expect(text.startsWith(`${progress.total} in all: `)).toBe(true);
    });
  });

  it('shows no chunk pending in a job of 1 done, 1 failed and 2 cancelled chunks', () => {
    const { progress } = progressCases.cases[0];
    expect(progress).toEqual({ total: 4, pending: 0, running: 0, retrying: 0, done: 1, failed: 1, cancelled: 2, resumed: 0 });
    expect(progressBreakdown(progress)).toBe('4 in all: 0 pending, 0 running, 0 retrying, 1 done, 1 failed, 2 cancelled');
    expect(progressText(progress)).not.toContain('pending');
  });

  it('knows which jobs are still going and names job files', () => {
    expect(isActive({ state: 'RUNNING' })).toBe(true);
    expect(isActive({ state: 'CANCELLED' })).toBe(false);
    expect(jobStem('jobs/upper.bnjob.json')).toBe('upper');
  });
});

describe('media plan pictures', () => {
  it('shows inline images only', () => {
    const png = { src: 'data:image/png;base64,iVBORw0KGgo=', caption: 'a.png tile 0,0', width: 128, height: 96 };
    const sample = {
      chunk: 0,
      kind: 'media' as const,
      media: 'image',
      heading: 'the first 2 tile(s) of 6',
      pictures: [png, { src: 'https://example.com/x.png', caption: 'elsewhere', width: 1, height: 1 }]
    };
    expect(shownPictures(sample)).toEqual([png]);
    expect(shownPictures({ chunk: 0, kind: 'text', lines: ['a'] })).toEqual([]);
  });
});

describe('chunk pages', () => {
  it('names the chunks a page shows', () => {
    expect(pageLabel({ offset: 0, limit: 100, total: 523 })).toBe('1–100 of 523');
    expect(pageLabel({ offset: 500, limit: 100, total: 523 })).toBe('501–523 of 523');
    expect(pageLabel({ offset: 0, limit: 100, total: 0 })).toBe('none');
    expect(pageLabel({ offset: 600, limit: 100, total: 523 })).toBe('none of 523 here');
  });

  it('moves to the previous and next pages within the total', () => {
    expect(pageMoves({ offset: 0, limit: 100, total: 523 })).toEqual({ previous: null, next: 100 });
    expect(pageMoves({ offset: 100, limit: 100, total: 523 })).toEqual({ previous: 0, next: 200 });
    expect(pageMoves({ offset: 500, limit: 100, total: 523 })).toEqual({ previous: 400, next: null });
    expect(pageMoves({ offset: 50, limit: 100, total: 523 })).toEqual({ previous: 0, next: 150 });
    expect(pageMoves({ offset: 900, limit: 100, total: 523 })).toEqual({ previous: 423, next: null });
    expect(pageMoves({ offset: 0, limit: 100, total: 100 })).toEqual({ previous: null, next: null });
  });

  it('starts a page at the chunk typed in "From chunk", within the total', () => {
    expect(pageFrom('1200', 2500)).toBe(1200);
    expect(pageFrom(' 0 ', 2500)).toBe(0);
    expect(pageFrom('9999', 2500)).toBe(2499);
    expect(pageFrom('-5', 2500)).toBe(0);
    expect(pageFrom('', 2500)).toBeNull();
    expect(pageFrom('12.5', 2500)).toBeNull();
    expect(pageFrom('ten', 2500)).toBeNull();
  });
});

describe('LatestOnly', () => {
  /** A request whose answer comes when the test says. */
  function deferred<T>() {
    let resolve!: (value: T) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  }

  it('drops an older page that comes after a newer one (Next, then Previous)', async () => {
    const pages = new LatestOnly();
    const next = deferred<string>();
    const previous = deferred<string>();
    const shown: string[] = [];
    const show = (answer: { value: string } | null) => answer !== null && shown.push(answer.value);
    const first = pages.answer(() => next.promise).then(show);
    const second = pages.answer(() => previous.promise).then(show);
    previous.resolve('page 0');
    await second;
    next.resolve('page 100'); // the older answer comes last
    await first;
    expect(shown).toEqual(['page 0']);
  });

  it('hands on the latest answer when answers come in order', async () => {
    const pages = new LatestOnly();
    expect(await pages.answer(async () => 'page 0')).toEqual({ value: 'page 0' });
    expect(await pages.answer(async () => 'page 100')).toEqual({ value: 'page 100' });
  });

  it("drops an older request's error, and hands on the latest one's", async () => {
    const pages = new LatestOnly();
    const older = deferred<string>();
    const first = pages.answer(() => older.promise);
    const second = pages.answer(() => Promise.reject(new Error('server gone')));
    await expect(second).rejects.toThrow('server gone');
    older.reject(new Error('timed out'));
    await expect(first).resolves.toBeNull();
  });
});

describe('Poller', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());
  /** Let resolved promises run their callbacks. */
  const settle = async () => {
    for (let i = 0; i < 10; i++) {
      await Promise.resolve();
    }
  };

  it('asks again while the job is active and stops at a final state', async () => {
    const states = ['RUNNING', 'RUNNING', 'COMPLETE', 'RUNNING', 'FAILED'];
    let calls = 0;
    const poller = new Poller(async () => isActive({ state: states[calls++] }), 2000);
    poller.kick();
    await settle();
    expect(calls).toBe(1);
    jest.advanceTimersByTime(1999);
    await settle();
    expect(calls).toBe(1);
    jest.advanceTimersByTime(1);
    await settle();
    expect(calls).toBe(2);
    jest.advanceTimersByTime(2000);
    await settle();
    expect(calls).toBe(3); // COMPLETE
    expect(poller.polling).toBe(false);
    jest.advanceTimersByTime(600_000);
    await settle();
    expect(calls).toBe(3);
    poller.kick(); // rerun: follow it again until it ends
    await settle();
    jest.advanceTimersByTime(2000);
    await settle();
    expect(calls).toBe(5);
    expect(poller.polling).toBe(false);
    poller.dispose();
  });

  it('never runs two requests at once: a kick meanwhile asks once more afterwards', async () => {
    const pending: ((more: boolean) => void)[] = [];
    const poller = new Poller(() => new Promise<boolean>(resolve => pending.push(resolve)), 2000);
    poller.kick();
    poller.kick();
    poller.kick();
    await settle();
    expect(pending.length).toBe(1);
    pending[0](false);
    await settle();
    expect(pending.length).toBe(2); // the kicks made while it ran, once
    pending[1](false);
    await settle();
    expect(pending.length).toBe(2);
    expect(poller.polling).toBe(false);
  });

  it('keeps asking when the server does not answer, and stops for good when disposed', async () => {
    let calls = 0;
    const poller = new Poller(async () => {
      calls++;
      throw new Error('cannot reach the Jupyter server');
    }, 500);
    poller.kick();
    await settle();
    jest.advanceTimersByTime(500);
    await settle();
    expect(calls).toBe(2);
    poller.dispose();
    jest.advanceTimersByTime(5000);
    await settle();
    poller.kick();
    await settle();
    expect(calls).toBe(2);
  });
});
