// Where a stage-0 state's reading head misses the code (env STATE, N, DIMS, DEPTHS): per character, in place / right slot but said 'no character' / a wrong
// character (of which the code's previous or next one: a place off by one) / the right one in another slot of its cell or in its slot of a neighbouring cell; and the wrong readings.
// PER_IMAGE=1 also prints each image's code, its reading (_: no character) and where the code's middle lies within its row of cells (0–1).
import { labLlavaHrModel } from '../../dist/src/lab/models.js';
import { stageZeroReader } from '../../dist/src/lab/pretrain-convnext.js';
import { characterCells, READING_SLOTS } from '../../dist/src/lab/reading.js';
import { renderSmallPrint, CODE_ALPHABET } from '../../dist/src/lab/smallprint.js';
import { shape } from './shape.mjs';
import { stageZeroWeights } from './state.mjs';
const env = process.env;
const model = labLlavaHrModel(shape);
const reader = await stageZeroReader(model, await stageZeroWeights(model, env.STATE), 2);
const S = model.size, grid = reader.grid, C = CODE_ALPHABET.length + 1;
const argmax = (a, from, n) => { let b = 0; for (let i = 1; i < n; i++) if (a[from + i] > a[from + b]) b = i; return b; };
const bySize = new Map(); const pairs = [];
const N = Number(env.N ?? 50);
for (let i = 0; i < N; i++) {
  const s = await renderSmallPrint(1_000_000, i);
  const logits = await reader.read(s);
  const cells = characterCells(s, grid);
  const size = Math.round((s.capHeight * S) / Math.max(s.width, s.height));
  if (env.PER_IMAGE === '1') {
    const side = Math.max(s.width, s.height), middle = (((side - s.height) / 2 + s.box.y + s.box.height / 2) * S) / side;
    const read = [...s.code].map((ch, k) => (cells[k] < 0 ? '?' : CODE_ALPHABET[argmax(logits, (cells[k] * READING_SLOTS + k) * C, C)] ?? '_')).join('');
    console.log(`image ${i}: cap ${((s.capHeight * S) / side).toFixed(1)} px, middle at ${((middle % (S / grid)) / (S / grid)).toFixed(2)} of its row, ${s.code} read ${read}`);
  }
  const t = bySize.get(size) ?? { n: 0, inPlace: 0, rightSlotCharWrong: 0, shifted: 0, rightSlotBlank: 0, otherSlot: 0, neighbourCell: 0, charOnly: 0 };
  [...s.code].forEach((ch, k) => {
    const cell = cells[k]; t.n++;
    if (cell < 0) return;
    const want = CODE_ALPHABET.indexOf(ch);
    const at = (cell * READING_SLOTS + k) * C;
    const top = argmax(logits, at, C);
    if (top === want) { t.inPlace++; t.charOnly++; return; }
    if (argmax(logits, at, C - 1) === want) t.charOnly++;
    if (top === C - 1) t.rightSlotBlank++;
    else {
      t.rightSlotCharWrong++;
      if (CODE_ALPHABET[top] === s.code[k - 1] || CODE_ALPHABET[top] === s.code[k + 1]) t.shifted++;
      pairs.push(ch + '>' + CODE_ALPHABET[top] + size);
    }
    for (let j = 0; j < READING_SLOTS; j++) if (j !== k && argmax(logits, (cell * READING_SLOTS + j) * C, C) === want) { t.otherSlot++; break; }
    const [row, col] = [Math.floor(cell / grid), cell % grid];
    const neighbours = [[0, -1], [0, 1], [-1, 0], [1, 0]].map(([dr, dc]) => [row + dr, col + dc]).filter(([r, c]) => r >= 0 && r < grid && c >= 0 && c < grid);
    if (neighbours.some(([r, c]) => argmax(logits, ((r * grid + c) * READING_SLOTS + k) * C, C) === want)) t.neighbourCell++;
  });
  bySize.set(size, t);
}
for (const [size, t] of [...bySize].sort(([a], [b]) => a - b)) console.log(`cap ${size}: n ${t.n} inPlace ${(100 * t.inPlace / t.n).toFixed(0)} % | misses: said blank ${t.rightSlotBlank}, wrong char ${t.rightSlotCharWrong} (the code's previous or next ${t.shifted}), right char in another slot ${t.otherSlot}, in its slot of a neighbouring cell ${t.neighbourCell}; best character in slot right ${(100 * t.charOnly / t.n).toFixed(0)} %`);

console.log(pairs.sort().join(' '));
await reader.dispose();
