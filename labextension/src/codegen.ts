/**
 * Python code and papermill notebooks made from a job: "Insert job code into
 * the active notebook" and "Export job as a papermill job notebook".
 *
 * Credentials never go into generated code: `storageOptions` and app `env`
 * keys that look like secrets are left out, by the library's own rule (the server sends it
 * with the components, as `secretNamePattern`; credentials come from the
 * environment).
 */

import { ICatalog, JSONObject, JSONValue } from './model';

/** Tells whether a key name looks like it holds a credential. */
export type SecretNameRule = (name: string) => boolean;

/**
 * The library's rule for secret key names, from the components catalog.
 *
 * ```ts
 * const isSecret = secretNameRule(await loadCatalog());
 * isSecret('aws_secret_access_key'); // true
 * ```
 */
export function secretNameRule(catalog: Pick<ICatalog, 'secretNamePattern'>): SecretNameRule {
  const pattern = new RegExp(catalog.secretNamePattern, 'i');
  return name => pattern.test(name);
}

/**
 * A copy of a job without secret-looking keys in its storage options and in
 * its app's `env` (the app gets those from the environment it runs in).
 */
export function withoutSecrets(job: JSONObject, isSecret: SecretNameRule): JSONObject {
  const strip = (value: JSONValue): JSONValue => {
    if (Array.isArray(value)) {
      return value.map(strip);
    }
    if (value !== null && typeof value === 'object') {
      const out: JSONObject = {};
      for (const [key, inner] of Object.entries(value)) {
        if (!isSecret(key)) {
          out[key] = strip(inner);
        }
      }
      return out;
    }
    return value;
  };
  const out: JSONObject = { ...job };
  for (const key of ['storageOptions', 'storage_options']) {
    if (key in out) {
      out[key] = strip(out[key]);
    }
  }
  const app = out.app;
  if (app && typeof app === 'object' && !Array.isArray(app) && app.env && typeof app.env === 'object') {
    out.app = { ...app, env: strip(app.env) };
  }
  for (const key of ['dataSource', 'dataDestination']) {
    const location = out[key];
    if (location && typeof location === 'object' && !Array.isArray(location)) {
      const copy: JSONObject = { ...location };
      for (const inner of ['storageOptions', 'storage_options']) {
        if (inner in copy) {
          copy[inner] = strip(copy[inner]);
        }
      }
      out[key] = copy;
    }
  }
  return out;
}

/** A JSON value written as a Python literal, indented by `indent` spaces per level. */
export function toPythonLiteral(value: JSONValue, indent = 4, level = 0): string {
  const pad = (n: number) => ' '.repeat(indent * n);
  if (value === null) {
    return 'None';
  }
  if (value === true) {
    return 'True';
  }
  if (value === false) {
    return 'False';
  }
  if (typeof value === 'number') {
    return Number.isFinite(value) ? JSON.stringify(value) : 'None';
  }
  if (typeof value === 'string') {
    return JSON.stringify(value); // JSON string escapes are valid in Python strings
  }
  if (Array.isArray(value)) {
    if (!value.length) {
      return '[]';
    }
    const items = value.map(v => pad(level + 1) + toPythonLiteral(v, indent, level + 1));
    return `[\n${items.join(',\n')},\n${pad(level)}]`;
  }
  const entries = Object.entries(value);
  if (!entries.length) {
    return '{}';
  }
  const items = entries.map(([k, v]) => `${pad(level + 1)}${JSON.stringify(k)}: ${toPythonLiteral(v, indent, level + 1)}`);
  return `{\n${items.join(',\n')},\n${pad(level)}}`;
}

/** The folder part of a path relative to the Jupyter root (`""` for the root). */
export function dirname(path: string): string {
  const parts = path.split('/').filter(Boolean);
  parts.pop();
  return parts.join('/');
}

/** The path from folder `from` to folder `to`, both relative to the Jupyter root. */
export function relativeFolder(from: string, to: string): string {
  const a = from.split('/').filter(Boolean);
  const b = to.split('/').filter(Boolean);
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) {
    common++;
  }
  const parts = [...a.slice(common).map(() => '..'), ...b.slice(common)];
  return parts.length ? parts.join('/') : '.';
}

/**
 * Python that builds and runs the job in a notebook whose folder is
 * `notebookDir`; relative paths keep resolving against the job file's folder.
 */
export function jobToPython(job: JSONObject, jobPath: string, notebookDir: string, isSecret: SecretNameRule): string {
  const baseDir = relativeFolder(notebookDir, dirname(jobPath));
  return [
    'import bytenite_nb as bn',
    '',
    `# From ${jobPath}; relative paths resolve against its folder.`,
    `job = bn.Job.from_dict(${toPythonLiteral(withoutSecrets(job, isSecret), 4, 0)}, base_dir=${JSON.stringify(baseDir)})`,
    'result = job.run(progress=True)',
    'result'
  ].join('\n');
}

/** nbformat 4 cell helpers. */
function markdownCell(id: string, source: string): JSONObject {
  return { cell_type: 'markdown', id, metadata: {}, source };
}

function codeCell(id: string, source: string, tags: string[] = []): JSONObject {
  return {
    cell_type: 'code',
    id,
    execution_count: null,
    metadata: tags.length ? { tags } : {},
    outputs: [],
    source
  };
}

/**
 * A papermill job notebook for the job, saved beside the job file: a
 * `parameters` cell (run id, cluster, test run) that papermill overrides,
 * then the job, then the run.
 */
export function papermillNotebook(job: JSONObject, jobPath: string, isSecret: SecretNameRule): JSONObject {
  const name = String(job.name ?? 'job');
  const stem = (jobPath.split('/').pop() ?? 'job').replace(/\.bnjob\.json$|\.json$/, '');
  const cells = [
    markdownCell(
      'about',
      [
        `# Job: ${name}`,
        '',
        `Made from \`${jobPath.split('/').pop()}\`. Run it as a batch with papermill, e.g.`,
        '',
        '```',
        `papermill ${stem}.ipynb ${stem}-run.ipynb -p job_id ${stem}-1 -p scheduler tcp://scheduler:8786`,
        '```',
        '',
        'The same `job_id` again resumes a run: only the chunks that did not complete run again.'
      ].join('\n')
    ),
    codeCell(
      'parameters',
      [
        '# Parameters (papermill overrides these)',
        'job_id = None  # None: a fresh id; an earlier id resumes that run',
        'scheduler = None  # a Dask scheduler address; None: the default cluster',
        'workers = None  # workers of a local cluster',
        'test_job = False  # True: run the whole pipeline on the first chunk only',
        'force = False  # True: run again even if the job id is COMPLETE'
      ].join('\n'),
      ['parameters']
    ),
    codeCell(
      'job',
      [
        'import bytenite_nb as bn',
        '',
        `JOB = ${toPythonLiteral(withoutSecrets(job, isSecret), 4, 0)}`,
        '',
        '# This notebook sits beside the job file: relative paths resolve from here.',
        'job = bn.Job.from_dict(JOB, base_dir=".")',
        'if test_job:',
        '    job = job.copy(config={**job.user_config, "isTestJob": True})'
      ].join('\n')
    ),
    codeCell(
      'run',
      [
        'result = job.run(id=job_id, scheduler=scheduler, workers=workers, force=force, progress=True)',
        'print(f"{result.job_id} {result.state}: {result.n_chunks} chunk(s)")',
        'for output in result.outputs:',
        '    print(output["url"], output["size"])'
      ].join('\n')
    )
  ];
  return {
    cells,
    metadata: {
      kernelspec: { display_name: 'Python 3 (ipykernel)', language: 'python', name: 'python3' },
      language_info: { name: 'python' }
    },
    nbformat: 4,
    nbformat_minor: 5
  };
}
