/**
 * Block quantisation off the main thread (run by WorkerHost): while a worker quantises one weight, the main thread
 * reads and converts the next, so a large model's load uses two cores (see quantizeOffThread in linear.ts).
 */
import { quantizeBlockwise, type BlockQuantized } from '../graph/quantize.js';

export function quantize(weight: Float32Array, n: number, k: number, bits: 4 | 8, blockSize: number): BlockQuantized {
  return quantizeBlockwise(weight, n, k, bits, blockSize);
}
