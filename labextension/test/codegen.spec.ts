import { execFileSync } from 'child_process';

import {
  dirname,
  jobToPython,
  papermillNotebook,
  relativeFolder,
  secretNameRule,
  toPythonLiteral,
  withoutSecrets
} from '../src/codegen';
import { JSONObject } from '../src/model';

const python = process.env.PYTHON ?? 'python3';

/** Evaluate Python source with a real interpreter and return what it prints as JSON. */
function runPython(source: string): any {
  return JSON.parse(execFileSync(python, ['-c', source], { encoding: 'utf-8' }));
}

/** The library's own rule, as the server's components endpoint sends it. */
const secretNamePattern: string = runPython(
  'import json; from bytenite_nb.redact import SECRET_NAME_PATTERN; print(json.dumps(SECRET_NAME_PATTERN))'
);
const isSecret = secretNameRule({ secretNamePattern });

const job: JSONObject = {
  name: 'upper "quoted" \\ back',
  partitioner: 'split-lines',
  app: { command: ['python3', 'app.py'] },
  assembler: 'concat',
  dataSource: { dataSourceDescriptor: 'file', params: { path: 'data/in.txt' } },
  dataDestination: 'out/',
  params: { partitioner: { chunk_size: 4096 }, app: {}, assembler: {} },
  config: { isTestJob: false, taskTimeout: null, retryBackoff: 0.5 },
  storageOptions: { anon: true, secret: 'do-not-print', client_kwargs: { endpoint_url: 'http://127.0.0.1:9' } }
};

describe('toPythonLiteral', () => {
  it('gives Python that evaluates to the same value', () => {
    const value = { s: 'é\n"\'\\', n: [1, 2.5, -3e-7], b: [true, false, null], e: {}, l: [] };
    const literal = toPythonLiteral(value);
    expect(runPython(`import json; print(json.dumps(${literal}))`)).toEqual(value);
  });
});

describe('withoutSecrets', () => {
  it('drops secret-looking storage options and keeps the rest', () => {
    const out = withoutSecrets(
      {
        ...job,
        dataSource: { dataSourceDescriptor: 's3', params: { bucketName: 'b' }, storageOptions: { key: 'AKIA', anon: false } }
      },
      isSecret
    );
    expect(out.storageOptions).toEqual({ anon: true, client_kwargs: { endpoint_url: 'http://127.0.0.1:9' } });
    expect((out.dataSource as JSONObject).storageOptions).toEqual({ anon: false });
  });

  it("drops secret-looking variables of the app's env and keeps its command", () => {
    const app = { command: ['python3', 'app.py'], env: { API_TOKEN: 'do-not-print', MODE: 'fast' } };
    const out = withoutSecrets({ ...job, app }, isSecret);
    expect(out.app).toEqual({ command: ['python3', 'app.py'], env: { MODE: 'fast' } });
    expect(withoutSecrets({ ...job, app: 'identity' }, isSecret).app).toBe('identity');
    expect(JSON.stringify(papermillNotebook({ ...job, app }, 'jobs/upper.bnjob.json', isSecret))).not.toContain(
      'do-not-print'
    );
  });

  it('names secrets exactly as the library does', () => {
    const names = [
      'aws_secret_access_key', 'endpoint_url', 'key', 'Key', 'keyfile', 'token', 'sig', 'signature_version',
      'SAS_TOKEN', 'sas_url', 'account_name', 'AccountKey', 'connection_string', 'auth_mode', 'author',
      'session_kwargs', 'anon', 'client_kwargs', 'apiKey', 'private_key_id', 'password', 'region_name'
    ];
    const expected: boolean[] = runPython(
      `import json; from bytenite_nb.redact import is_secret_name; print(json.dumps([is_secret_name(n) for n in ${JSON.stringify(names)}]))`
    );
    expect(names.map(isSecret)).toEqual(expected);
    expect(expected.filter(Boolean).length).toBeGreaterThan(5);
    expect(expected.filter(b => !b).length).toBeGreaterThan(5);
  });
});

describe('paths', () => {
  it('finds the job folder from the notebook folder', () => {
    expect(dirname('jobs/upper.bnjob.json')).toBe('jobs');
    expect(dirname('upper.bnjob.json')).toBe('');
    expect(relativeFolder('', 'jobs')).toBe('jobs');
    expect(relativeFolder('notebooks/a', 'jobs')).toBe('../../jobs');
    expect(relativeFolder('jobs', 'jobs')).toBe('.');
  });
});

describe('jobToPython', () => {
  it('builds the same job with base_dir pointing at the job file folder, and no secret', () => {
    const code = jobToPython(job, 'jobs/upper.bnjob.json', 'notebooks', isSecret);
    expect(code).not.toContain('do-not-print');
    expect(code).toContain('base_dir="../jobs"');
    expect(code).toContain('result = job.run(progress=True)');
    // Everything before the run, executed for real, with the library's Job.
    const build = code.split('result = job.run')[0];
    const printed = runPython(
      `import json, os\n${build}\nprint(json.dumps({"job": job.to_dict(), "base": os.path.relpath(job.base_dir)}))`
    );
    const { storageOptions, ...rest } = job;
    void storageOptions;
    expect(printed.base).toBe('../jobs');
    expect(printed.job).toEqual({ ...rest, storageOptions: { anon: true, client_kwargs: { endpoint_url: 'http://127.0.0.1:9' } } });
  });
});

describe('papermillNotebook', () => {
  const notebook = papermillNotebook(job, 'jobs/upper.bnjob.json', isSecret);

  it('is a valid nbformat 4 notebook with a papermill parameters cell', () => {
    const validated = runPython(
      [
        'import json, sys, nbformat',
        `nb = nbformat.reads(${JSON.stringify(JSON.stringify(notebook))}, as_version=4)`,
        'nbformat.validate(nb)',
        'tagged = [c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])]',
        'print(json.dumps({"cells": len(nb.cells), "parameters": tagged}))'
      ].join('\n')
    );
    expect(validated.cells).toBe(4);
    expect(validated.parameters[0]).toContain('job_id = None');
  });

  it('carries the job without secrets and runs it with the parameters', () => {
    const sources = (notebook.cells as JSONObject[]).map(c => String(c.source)).join('\n');
    expect(sources).not.toContain('do-not-print');
    expect(sources).toContain('job.run(id=job_id, scheduler=scheduler, workers=workers, force=force, progress=True)');
    expect(sources).toContain('papermill upper.ipynb upper-run.ipynb');
  });
});
