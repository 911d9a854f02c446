/**
 * Seeded randomness for the generated tasks. Every sample draws from its own stream, derived from the dataset's
 * seed, the task and the sample's index, so that one sample can be regenerated alone and a dataset does not change
 * when another task's generator changes.
 */
import { seededRandom } from '../generate/sampling.js';

export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = seededRandom(seed);
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** `count` distinct items in random order. */
  sample<T>(items: readonly T[], count: number): T[] {
    if (count > items.length) throw new Error(`cannot draw ${count} distinct items from ${items.length}`);
    return this.shuffle(items).slice(0, count);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log stays finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

/** The seed of one sample's stream: a 32-bit mix (murmur3's finaliser) of the dataset seed, the task and the index. */
export function sampleSeed(seed: number, task: string, index: number): number {
  let h = mix32(seed >>> 0);
  for (const ch of task) h = mix32(h ^ ch.codePointAt(0)!);
  return mix32(h ^ mix32(index >>> 0));
}

function mix32(x: number): number {
  let h = (x + 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The stream of sample `index` of `task` in the dataset of `seed`. */
export function sampleRng(seed: number, task: string, index: number): Rng {
  return new Rng(sampleSeed(seed, task, index));
}
