/**
 * The REST API of the server extension (`/bytenite-nb/...`), through
 * JupyterLab's authenticated server connection.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  ICatalog,
  IChunkDetail,
  IChunkGrid,
  IClusterEntry,
  IClusterInfo,
  IClusterList,
  IFieldError,
  IJobDetail,
  IJobSummary,
  IPlan,
  IValidation,
  JSONObject
} from './model';

const GET_ATTEMPTS = 4;
/** Chunks per page of a job's panel. */
export const CHUNK_PAGE_SIZE = 100;
/** Chunks per page of a plan's preview: the editor never holds a whole plan. */
export const PLAN_PAGE_SIZE = 50;
const RETRY_DELAY_MS = 500;
/** Chunks per page of a job's chunk grid (the server's page, 100 x 100 cells). */
export const CHUNK_GRID_PAGE = 10000;

/** An error the server answered with: the library's message, and its field errors. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errors: IFieldError[] = [],
    readonly kind = 'Error'
  ) {
    super(message);
  }
}

/** Call `/bytenite-nb/<path>`; the decoded JSON, or an {@link ApiError}. */
export async function requestAPI<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'bytenite-nb', path);
  const method = (init.method ?? 'GET').toUpperCase();
  let response: Response | null = null;
  for (let attempt = 1; response === null; attempt++) {
    try {
      response = await ServerConnection.makeRequest(url, init, settings);
    } catch (error) {
      // The browser drops requests in flight when its network changes; a GET
      // is safe to send again, anything else is reported.
      if (method !== 'GET' || attempt >= GET_ATTEMPTS) {
        throw new ApiError(`cannot reach the Jupyter server: ${error}`, 0);
      }
      await new Promise(resolve => setTimeout(resolve, RETRY_DELAY_MS * attempt));
    }
  }
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    throw new ApiError(data?.message ?? response.statusText, response.status, data?.errors ?? [], data?.error);
  }
  return data as T;
}

function post(body: JSONObject): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}

/** The requests the extension makes, one function each. */
export const api = {
  components: () => requestAPI<ICatalog>('components'),
  validate: (job: JSONObject, path: string | null) => requestAPI<IValidation>('validate', post({ job, path })),
  plan: (job: JSONObject, path: string | null, offset = 0, limit = PLAN_PAGE_SIZE) =>
    requestAPI<IPlan>('plan', post({ job, path, offset, limit })),
  submit: (job: JSONObject, path: string | null, cluster: string | null) =>
    requestAPI<IJobSummary>('jobs', post({ job, path, cluster })),
  jobs: (limit = 50) => requestAPI<{ jobs: IJobSummary[] }>(`jobs?limit=${limit}`),
  job: (id: string, offset = 0, limit = CHUNK_PAGE_SIZE) =>
    requestAPI<IJobDetail>(`jobs/${encodeURIComponent(id)}?offset=${offset}&limit=${limit}`),
  cancel: (id: string) => requestAPI<IJobSummary>(`jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }),
  rerun: (id: string) => requestAPI<IJobSummary>(`jobs/${encodeURIComponent(id)}/rerun`, { method: 'POST' }),
  chunkGrid: (id: string, offset = 0, limit = CHUNK_GRID_PAGE) =>
    requestAPI<IChunkGrid>(`jobs/${encodeURIComponent(id)}/chunks?offset=${offset}&limit=${limit}`),
  chunk: (id: string, index: number) => requestAPI<IChunkDetail>(`jobs/${encodeURIComponent(id)}/chunk?index=${index}`),
  clusters: (defaultCluster: string | null) =>
    requestAPI<IClusterList>(defaultCluster ? `clusters?default=${encodeURIComponent(defaultCluster)}` : 'clusters'),
  scaleCluster: (kind: string, name: string, workers: number) =>
    requestAPI<IClusterEntry>('clusters/scale', post({ kind, name, workers })),
  shutdownCluster: (kind: string, name: string) => requestAPI<IClusterEntry>('clusters/shutdown', post({ kind, name })),
  cluster: (address: string | null) =>
    requestAPI<IClusterInfo>(address ? `cluster?address=${encodeURIComponent(address)}` : 'cluster')
};
