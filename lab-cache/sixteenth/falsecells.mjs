// Where stage 0's reader sees characters outside the code: in word boxes, next to the code, elsewhere. env STATE, N.
import { FULL_PLAN } from '../../dist/src/lab/plans.js';
import { labLlavaHrModel } from '../../dist/src/lab/models.js';
import { pretrainConvnext } from '../../dist/src/lab/pretrain-convnext.js';
import { openCheckpointFile } from '../../dist/src/io/checkpoint.js';
import { freshTensors } from '../../dist/src/train/scratch.js';
import { readingHeadSpecs, readingHeadLogits, characterCells, cellsReadAsCharacters } from '../../dist/src/lab/reading.js';
import { renderSmallPrint } from '../../dist/src/lab/smallprint.js';
import { Graph } from '../../dist/src/graph/ir.js';
import { identityLayout, WeightScope } from '../../dist/src/graph/weights.js';
import { convnextStages } from '../../dist/src/models/convnext.js';
import { mapToTokens } from '../../dist/src/models/llava-hr/mr-adapter.js';
import { Session, ort } from '../../dist/src/runtime/session.js';
import { decodeImage } from '../../dist/src/vision/decode.js';
const env = process.env;
const model = labLlavaHrModel(FULL_PLAN.mra.shape);
const specs = new Map([...model.specs, ...readingHeadSpecs(128)]);
// The state's own step, so that the state is only read: a later step would train on and save over it.
const state = await openCheckpointFile(env.STATE);
const steps = Number(state.metadata.egret_trainer_step);
await state.close();
const { source } = await pretrainConvnext(model, freshTensors(specs, 0), { ...FULL_PLAN.mra.train.pretrain, steps, sheets: 1, seed: 0, threads: 2, statePath: env.STATE, keepReadingHead: true });
const S = model.size, grid = 32;
const g = new Graph('diag');
const last = convnextStages(new WeightScope(g, source, '', identityLayout).at(model.convnext.prefix), model.convnext.config, g.input('pixel_values', 'float32', [1, 3, S, S])).at(-1);
g.output(readingHeadLogits(g, source, mapToTokens(last)), 'logits');
const session = await Session.fromGraph(g, { threads: 2 });
const tally = { word: 0, near: 0, pad: 0, other: 0, wordCells: 0, padCells: 0 };
const N = Number(env.N ?? 20);
for (let i = 0; i < N; i++) {
  const s = await renderSmallPrint(1_000_000, i);
  const out = await session.run({ pixel_values: new ort.Tensor('float32', model.preprocess(await decodeImage(s.png)), [1, 3, S, S]) });
  const logits = out.logits.data;
  const code = characterCells(s, grid);
  const square = Math.max(s.width, s.height), ox = (square - s.width) / 2, oy = (square - s.height) / 2;
  const cellOf = (x, y) => [Math.floor((ox + x) * grid / square), Math.floor((oy + y) * grid / square)];
  const wordCells = new Set();
  for (const b of s.words) {
    const [x0, y0] = cellOf(b.x, b.y), [x1, y1] = cellOf(b.x + b.width, b.y + b.height);
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) wordCells.add(y * grid + x);
  }
  tally.wordCells += wordCells.size;
  // A cell wholly outside the image: expand2square's padding.
  const isPad = (cx, cy) => (cx + 1) * square / grid <= ox || cx * square / grid >= ox + s.width || (cy + 1) * square / grid <= oy || cy * square / grid >= oy + s.height;
  for (let c = 0; c < grid * grid; c++) if (isPad(c % grid, Math.floor(c / grid))) tally.padCells++;
  for (const cell of cellsReadAsCharacters(logits, grid * grid)) {
    if (code.includes(cell)) continue;
    const [cx, cy] = [cell % grid, Math.floor(cell / grid)];
    if (code.some((c) => c >= 0 && Math.abs(c % grid - cx) <= 1 && Math.abs(Math.floor(c / grid) - cy) <= 1)) tally.near++;
    else if (wordCells.has(cell)) tally.word++;
    else if (isPad(cx, cy)) tally.pad++;
    else tally.other++;
  }
}
for (const k in tally) tally[k] = (tally[k] / N).toFixed(1);
console.log('per image', JSON.stringify(tally));
await session.dispose();
