/**
 * Model cards for the lab's trained models (README.md in the model's folder, as Hugging Face keeps them; its first
 * line is what `egret serve`'s /v1/models and the web UI show): what the model is, the command and settings that
 * made it, its training time and machine, and its held-out accuracy.
 */
import { join } from 'node:path';
import { writeFileAtomically } from '../io/file.js';
import { EGRET_VERSION } from '../version.js';
import type { SmallPrintScore } from './evaluate.js';
import type { ModelRecord } from './mra-lab.js';

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

export interface CardFacts {
  /** The card's title: the first line. */
  title: string;
  /** What the model is, in a sentence or two. */
  description: string;
  record: ModelRecord;
  /** Held-out scoring: the seed and the score. */
  heldOutSeed: number;
  score: SmallPrintScore;
}

export function modelCard(facts: CardFacts): string {
  const { record, score } = facts;
  const hours = record.trainingSeconds / 3600;
  return [
    `# ${facts.title}`,
    '',
    facts.description,
    '',
    '## How it was made',
    '',
    `\`egret lab\` (egret ${EGRET_VERSION}) trained it from scratch with egret's own training engine; the settings, seed included, are in`,
    '`src/lab/plans.ts` (`FULL_PLAN`) and here in `lab.json`. `egret lab` rebuilds it (into its cache folder) when no model',
    'of the same settings is at hand: `egret lab --cache-dir DIR` with an empty DIR, then compare `DIR/*/lab.json`.',
    '',
    `- training: ${record.trainingSeconds} s (${hours.toFixed(1)} h) on ${record.machine}`,
    ...(record.parameters === undefined ? [] : [`- parameters: ${record.parameters}`]),
    ...(record.finalLoss === undefined ? [] : [`- answer loss at the last step: ${record.finalLoss.toFixed(3)}`]),
    '',
    '## Held-out accuracy',
    '',
    `${score.samples} small-print images of seed ${facts.heldOutSeed} (never seen in training), asked as \`egret generate\` asks,`,
    `greedy: exact match ${pct(score.exact)}, characters in place ${pct(score.characters)}.`,
    '',
    '| answer | code |',
    '|---|---|',
    ...score.examples.map(([answer, code]) => `| ${answer || '(empty)'} | ${code} |`),
    '',
  ].join('\n');
}

/** Writes the card as README.md into the record's folder. */
export async function writeModelCard(facts: CardFacts): Promise<void> {
  await writeFileAtomically(join(facts.record.dir, 'README.md'), modelCard(facts));
}
