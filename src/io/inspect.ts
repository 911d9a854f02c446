import { type TensorInfo, type TensorSource, openCheckpoint } from './checkpoint.js';

export interface CheckpointListing {
  format: TensorSource['format'];
  tensors: TensorInfo[];
}

/** Format and tensor list of a checkpoint file, index json or model directory, without reading tensor data. */
export async function inspectCheckpoint(path: string): Promise<CheckpointListing> {
  const source = await openCheckpoint(path);
  try {
    return { format: source.format, tensors: source.list() };
  } finally {
    await source.close();
  }
}
