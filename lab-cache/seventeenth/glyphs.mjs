// Stage 0's glyph head (second stage, 8-px cells) on whole task images: the share of the code's characters it reads, by cap height. env STATE, N, DIMS, DEPTHS.
import { labLlavaHrModel } from '../../dist/src/lab/models.js';
import { shape } from './shape.mjs';
import { stageZeroWeights } from './state.mjs';
import { readingHeadLogits, characterCentres, glyphTargets, READING_SLOTS } from '../../dist/src/lab/reading.js';
import { renderSmallPrint, CODE_ALPHABET } from '../../dist/src/lab/smallprint.js';
import { Graph } from '../../dist/src/graph/ir.js';
import { identityLayout, WeightScope } from '../../dist/src/graph/weights.js';
import { convnextStages } from '../../dist/src/models/convnext.js';
import { mapToTokens } from '../../dist/src/models/llava-hr/mr-adapter.js';
import { Session, ort } from '../../dist/src/runtime/session.js';
import { decodeImage } from '../../dist/src/vision/decode.js';
import { MemorySource, copyTensors } from '../../dist/src/io/memory-source.js';
import { openCheckpointFile, readAsFloat32 } from '../../dist/src/io/checkpoint.js';
const env = process.env;
const model = labLlavaHrModel(shape);
const trained = await stageZeroWeights(model, env.STATE);
const state = await openCheckpointFile(env.STATE);
// The glyph head is a training-graph tensor [width, slots·classes]: the checkpoint's [out, in] is its transpose.
const [w, b] = await Promise.all(['weight', 'bias'].map(async (n) => readAsFloat32(state, `lab_glyph_head.${n}`)));
const [inDim, outDim] = state.info('lab_glyph_head.weight').shape;
await state.close();
const wt = new Float32Array(w.length); for (let i = 0; i < inDim; i++) for (let o = 0; o < outDim; o++) wt[o * inDim + i] = w[i * outDim + o];
const source = new MemorySource({ ...await copyTensors(trained), 'lab_glyph_head.weight': { shape: [outDim, inDim], data: wt }, 'lab_glyph_head.bias': { shape: [outDim], data: b } });
const S = model.size, C = CODE_ALPHABET.length + 1, stride = 8;
const g = new Graph('glyphs');
const stages = convnextStages(new WeightScope(g, source, '', identityLayout).at(model.convnext.prefix), model.convnext.config, g.input('pixel_values', 'float32', [1, 3, S, S]));
g.output(readingHeadLogits(g, source, mapToTokens(stages[1]), 'lab_glyph_head'), 'logits');
const session = await Session.fromGraph(g, { threads: 2 });
const argmax = (a, from, n) => { let b = 0; for (let i = 1; i < n; i++) if (a[from + i] > a[from + b]) b = i; return b; };
const bySize = new Map();
for (let i = 0; i < Number(env.N ?? 50); i++) {
  const s = await renderSmallPrint(1_000_000, i);
  const logits = (await session.run({ pixel_values: new ort.Tensor('float32', model.preprocess(await decodeImage(s.png)), [1, 3, S, S]) })).logits.data;
  const targets = glyphTargets([characterCentres(s, S)], 0, 0, S, stride, 1 << 30);
  const size = Math.round((s.capHeight * S) / Math.max(s.width, s.height));
  const t = bySize.get(size) ?? [0, 0];
  for (let at = 0; at < targets.length; at++) if (targets[at] >= 0 && targets[at] < C - 1) { t[1]++; if (argmax(logits, at * C, C) === targets[at]) t[0]++; }
  bySize.set(size, t);
}
for (const [size, [ok, n]] of [...bySize].sort(([a], [b]) => a - b)) console.log(`cap ${size}: glyph head reads ${(100 * ok / n).toFixed(0)} % of ${n}`);
