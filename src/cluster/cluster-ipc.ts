import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';

/** Messages of this service on the cluster channel (prom-client uses its own). */
const TAG = 'glance-ipc';

export interface IpcRequest {
  tag: typeof TAG;
  kind: 'request';
  id: string;
  type: string;
  payload: unknown;
}

interface IpcResponse {
  tag: typeof TAG;
  kind: 'response';
  id: string;
  result?: unknown;
  error?: string;
}

export interface IpcBroadcast {
  tag: typeof TAG;
  kind: 'broadcast';
  type: string;
  payload: unknown;
}

type IpcMessage = IpcRequest | IpcResponse | IpcBroadcast;

const isIpc = (m: unknown): m is IpcMessage =>
  typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === TAG;

const pending = new Map<
  string,
  {
    resolve: (v: unknown) => void;
    reject: (e: Error) => void;
    timer: NodeJS.Timeout;
  }
>();
const broadcastHandlers = new Map<string, (payload: unknown) => void>();
let workerListening = false;

function listenInWorker(): void {
  if (workerListening) return;
  workerListening = true;
  process.on('message', (message: unknown) => {
    if (!isIpc(message)) return;
    if (message.kind === 'response') {
      const waiter = pending.get(message.id);
      if (!waiter) return;
      pending.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.error !== undefined) waiter.reject(new Error(message.error));
      else waiter.resolve(message.result);
    } else if (message.kind === 'broadcast') {
      broadcastHandlers.get(message.type)?.(message.payload);
    }
  });
}

/** Worker side: asks the primary and waits for its answer. */
export function askPrimary<T>(
  type: string,
  payload: unknown,
  timeoutMs = 5000,
): Promise<T> {
  listenInWorker();
  const id = randomUUID();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(
        new Error(`primary did not answer ${type} within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    pending.set(id, {
      resolve: resolve as (v: unknown) => void,
      reject,
      timer,
    });
    const request: IpcRequest = {
      tag: TAG,
      kind: 'request',
      id,
      type,
      payload,
    };
    process.send!(request, undefined, {}, (err) => {
      if (!err) return;
      pending.delete(id);
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Worker side: asks the primary to pass `payload` to every worker (this one included). */
export function broadcastToWorkers(type: string, payload: unknown): void {
  const message: IpcBroadcast = { tag: TAG, kind: 'broadcast', type, payload };
  if (process.connected) process.send!(message);
}

/** Worker side: what to do when a broadcast of `type` arrives. */
export function onBroadcast(
  type: string,
  handler: (payload: unknown) => void,
): void {
  listenInWorker();
  broadcastHandlers.set(type, handler);
}

/** Primary side: answers workers' requests and relays their broadcasts. */
export function servePrimary(
  handlers: Record<string, (payload: unknown, worker: Worker) => unknown>,
): void {
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isIpc(message)) return;
    if (message.kind === 'broadcast') {
      for (const other of Object.values(cluster.workers ?? {})) {
        if (other?.isConnected()) other.send(message);
      }
      return;
    }
    if (message.kind !== 'request') return;
    const reply = (answer: Omit<IpcResponse, 'tag' | 'kind' | 'id'>) => {
      if (worker.isConnected())
        worker.send({ tag: TAG, kind: 'response', id: message.id, ...answer });
    };
    const handler = handlers[message.type];
    if (!handler) {
      reply({ error: `unknown request ${message.type}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.payload, worker))
      .then(
        (result) => reply({ result }),
        (err: unknown) =>
          reply({ error: (err as Error).message ?? String(err) }),
      );
  });
}
