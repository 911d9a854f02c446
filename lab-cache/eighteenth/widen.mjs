// A stage-0 state's last ConvNeXt stage made twice as wide without changing what it computes (Net2WiderNet, Chen et
// al. 2016): every channel of the last stage (and hidden unit of its MLP) is duplicated, and the weights that read a
// duplicated input are halved, so that LayerNorm sees the same mean and variance and every sum stays the same. The
// copies get a little noise so that they part. The reading head reads the wider map; the glyph head is untouched.
// Adam's moments follow their gradients: a duplicated output gets half its gradient (m/2, v/4). env: FROM, TO, NOISE.
import { openCheckpointFile } from '../../dist/src/io/checkpoint.js';
import { writeSafetensors } from '../../dist/src/io/safetensors-write.js';
const env = process.env;
const P = 'model.vision_tower.slow_vision_tower.vision_tower.stages.3.';
const noise = Number(env.NOISE ?? 0.01);
const src = await openCheckpointFile(env.FROM);
// Deterministic noise (a small LCG + Box-Muller): the widened state is reproducible.
let seed = 12345;
const uniform = () => ((seed = (seed * 1103515245 + 12345) >>> 0) + 0.5) / 2 ** 32;
const gauss = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
// How each tensor widens: `axes` lists [axis, halve] for the axes that double (halve: the axis reads a duplicated input).
const plan = {
  'downsample.1.weight': [[0, false]], 'downsample.1.bias': [[0, false]],
  'blocks.0.conv_dw.weight': [[0, false]], 'blocks.0.conv_dw.bias': [[0, false]],
  'blocks.0.norm.weight': [[0, false]], 'blocks.0.norm.bias': [[0, false]],
  'blocks.0.mlp.fc1.weight': [[0, true], [1, false]], 'blocks.0.mlp.fc1.bias': [[0, false]],
  'blocks.0.mlp.fc2.weight': [[0, true], [1, false]], 'blocks.0.mlp.fc2.bias': [[0, false]],
  'blocks.0.weight': [[0, false]],
};
const widen = (values, shape, axis, factor) => {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1), n = shape[axis], inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(values.length * 2);
  for (let o = 0; o < outer; o++) for (let c = 0; c < 2 * n; c++) for (let i = 0; i < inner; i++) out[(o * 2 * n + c) * inner + i] = values[(o * n + (c % n)) * inner + i] * factor;
  const wider = [...shape];
  wider[axis] = 2 * n;
  return { values: out, shape: wider };
};
const tensors = {};
for (const { name, shape } of src.list()) {
  const kind = name.startsWith('adam_m.') ? 'm' : name.startsWith('adam_v.') ? 'v' : 'p';
  const base = kind === 'p' ? name : name.slice(7);
  let t = { values: await src.readFloat32(name), shape };
  const leaf = base.startsWith(P) ? base.slice(P.length) : undefined;
  if (leaf && plan[leaf]) {
    for (const [axis, halve] of plan[leaf]) t = widen(t.values, t.shape, axis, kind === 'p' && halve ? 0.5 : 1);
    if (kind === 'm') t.values.forEach((x, i) => (t.values[i] = x / 2));
    if (kind === 'v') t.values.forEach((x, i) => (t.values[i] = x / 4));
    if (kind === 'p' && leaf === 'downsample.1.weight') {
      const std = Math.sqrt(t.values.reduce((s, x) => s + x * x, 0) / t.values.length);
      const half = t.values.length / 2;
      for (let i = half; i < t.values.length; i++) t.values[i] += noise * std * gauss();
    }
  } else if (base === 'lab_reading_head.weight') {
    t = widen(t.values, t.shape, 0, kind === 'p' ? 0.5 : 1);
  }
  tensors[name] = { dtype: 'F32', shape: t.shape, data: t.values };
}
await writeSafetensors(env.TO, tensors, src.metadata);
await src.close();
console.log(`widened ${env.FROM} → ${env.TO}`);
