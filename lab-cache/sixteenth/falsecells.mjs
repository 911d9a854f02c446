// Where stage 0's reader sees characters outside the code: in word boxes, next to the code, elsewhere. env STATE, N.
import { FULL_PLAN } from '../../dist/src/lab/plans.js';
import { labLlavaHrModel } from '../../dist/src/lab/models.js';
import { stageZeroReader } from '../../dist/src/lab/pretrain-convnext.js';
import { characterCells, cellsReadAsCharacters, paddedSquare } from '../../dist/src/lab/reading.js';
import { renderSmallPrint } from '../../dist/src/lab/smallprint.js';
import { stageZeroWeights } from '../seventeenth/state.mjs';
const env = process.env;
const model = labLlavaHrModel(FULL_PLAN.mra.shape);
const reader = await stageZeroReader(model, await stageZeroWeights(model, env.STATE), 2);
const grid = reader.grid;
const tally = { word: 0, near: 0, pad: 0, other: 0, wordCells: 0, padCells: 0 };
const N = Number(env.N ?? 20);
for (let i = 0; i < N; i++) {
  const s = await renderSmallPrint(1_000_000, i);
  const logits = await reader.read(s);
  const code = characterCells(s, grid);
  // The padded square in cells: image point (x, y) lies in cell ((ox + x) · scale, (oy + y) · scale).
  const { scale, ox, oy } = paddedSquare(s, grid);
  const cellOf = (x, y) => [Math.floor((ox + x) * scale), Math.floor((oy + y) * scale)];
  const wordCells = new Set();
  for (const b of s.words) {
    const [x0, y0] = cellOf(b.x, b.y), [x1, y1] = cellOf(b.x + b.width, b.y + b.height);
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) wordCells.add(y * grid + x);
  }
  tally.wordCells += wordCells.size;
  // A cell wholly outside the image: expand2square's padding.
  const isPad = (cx, cy) => (cx + 1) / scale <= ox || cx / scale >= ox + s.width || (cy + 1) / scale <= oy || cy / scale >= oy + s.height;
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
await reader.dispose();
