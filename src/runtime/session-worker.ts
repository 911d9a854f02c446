/**
 * ORT sessions hosted in a worker thread (see WorkerHost). This module is loaded on both sides: the exported
 * functions run inside the worker; `WorkerSession` is the main-thread handle.
 */
import type { Graph } from '../graph/ir.js';
import { toOnnxBytes } from '../graph/onnx.js';
import { ort, Session, type SessionOptions } from './session.js';
import { WorkerHost } from './worker.js';

/** A tensor as it crosses threads: ORT's element type name, dims and data. */
export interface TensorData {
  type: ort.Tensor.Type;
  dims: number[];
  data: ort.Tensor.DataType;
}

const sessions = new Map<number, Session>();
let nextSession = 1;

// --- worker side -------------------------------------------------------------------------------------------
export async function openSession(model: Uint8Array, opts: SessionOptions): Promise<number> {
  const session = await Session.fromModel(model, opts);
  const id = nextSession++;
  sessions.set(id, session);
  return id;
}

export async function runSession(id: number, feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
  const session = sessions.get(id);
  if (!session) throw new Error(`no session ${id} in this worker`);
  const inputs: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) inputs[name] = new ort.Tensor(t.type, t.data as never, t.dims);
  const outputs = await session.run(inputs);
  const result: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(outputs)) result[name] = { type: t.type, dims: [...t.dims], data: t.data };
  return result;
}

export async function closeSession(id: number): Promise<void> {
  await sessions.get(id)?.dispose();
  sessions.delete(id);
}

// --- main-thread side --------------------------------------------------------------------------------------
/** A session whose runs happen in a worker thread; typed arrays passed to `run` are transferred (not copied). */
export class WorkerSession {
  private constructor(private readonly host: WorkerHost, private readonly id: number, private readonly ownsHost: boolean) {}

  static async fromGraph(graph: Graph, opts: SessionOptions = {}, host?: WorkerHost): Promise<WorkerSession> {
    const h = host ?? new WorkerHost(import.meta.url);
    const id = await h.call<number>('openSession', await toOnnxBytes(graph), opts);
    return new WorkerSession(h, id, !host);
  }

  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
    return this.host.call('runSession', this.id, feeds);
  }

  async dispose(): Promise<void> {
    await this.host.call('closeSession', this.id);
    if (this.ownsHost) await this.host.close();
  }
}
