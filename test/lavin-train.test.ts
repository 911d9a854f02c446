// LaVIN's training data and forward pass on tiny-lavin's training reference (issue #11): the dataset's examples and
// labels, the sequence's labels after the modality token and the inserted rows, and the batch loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint, openCheckpointFile } from '../src/io/checkpoint.js';
import { WeightScope } from '../src/graph/weights.js';
import { Session } from '../src/runtime/session.js';
import { openLlama } from '../src/models/llama/load.js';
import { wholeSequenceFeeds } from '../src/models/decoder.js';
import { lavinSettings } from '../src/models/lavin/settings.js';
import { lavinClipConfig } from '../src/models/lavin/vision.js';
import { buildLavinTrainingForward, lavinTrainingMask } from '../src/models/lavin/training.js';
import { loadTokenizer } from '../src/text/load.js';
import { tinyScienceQa } from './helpers/lavin.js';
import { readScienceQa } from '../src/train/scienceqa.js';
import { lavinBatch, lavinSample } from '../src/train/lavin-data.js';

const DIR = 'test/fixtures/tiny-lavin';
const CLIP = `${DIR}/clip/ViT-tiny.pt`;
const ADAPTER = `${DIR}/lavin/checkpoint-19.pth`;


const ints = (bytes: Uint8Array) => Array.from(new BigInt64Array(bytes.slice().buffer), Number);

test('LaVIN training data and forward: examples, labels, sequence labels exact; the batch loss within 1e-4', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egret-lavin-train-'));
  const ref = await openCheckpoint(`${DIR}/expected_train.safetensors`);
  try {
    const data = tinyScienceQa(dir, ['a0', 'a2']);
    const tokenizer = await loadTokenizer(`${DIR}/llama`);
    const samples = readScienceQa(data, 'train').map((p) => lavinSample(tokenizer, p, join(data, 'images/train'), 512));
    assert.deepEqual(samples.map((s) => s.indicator), ints(await ref.read('indicators')));
    assert.deepEqual(samples.flatMap((s) => Array.from(s.example)), ints(await ref.read('examples')));
    assert.deepEqual(samples.flatMap((s) => Array.from(s.labels)), ints(await ref.read('labels')));

    const weights = await openLlama(`${DIR}/llama`);
    const [clip, adapters] = await Promise.all([openCheckpointFile(CLIP), openCheckpointFile(ADAPTER)]);
    try {
      const clipConfig = await lavinClipConfig(clip, CLIP);
      const settings = lavinSettings(adapters, ADAPTER, { llmWidth: weights.config.hidden, clipWidth: clipConfig.hidden, clipLayers: clipConfig.layers });
      const { graph } = buildLavinTrainingForward(weights, clip, adapters, clipConfig, settings);
      const embedTable = await new WeightScope(graph, weights.source, '', weights.layout).read('model.embed_tokens.weight');
      const batch = await lavinBatch(samples, {
        embedTable, hidden: weights.config.hidden, visualTokens: settings.visualTokens, imageSize: clipConfig.imageSize, maxWords: 512,
        prefixImage: tokenizer.encode('Image: ', { bos: false }), prefixText: tokenizer.encode('Image: N/A', { bos: false }),
      });
      assert.deepEqual(Array.from(batch.seqLabels), ints(await ref.read('seq_labels')));
      const session = await Session.fromGraph(graph, { threads: 1 });
      try {
        const out = await session.run({ ...batch.feeds, ...wholeSequenceFeeds(2, batch.seq, lavinTrainingMask(2, batch.seq)) });
        const logits = out['logits']!.data as Float32Array;
        const vocab = weights.config.vocab;
        // Mean cross-entropy over the targets that are not 0, pooled over the batch (model.py's criterion).
        let total = 0;
        let count = 0;
        for (let b = 0; b < 2; b++) {
          for (let r = 0; r < batch.seq - 1; r++) {
            const target = Number(batch.targets[b * (batch.seq - 1) + r]);
            if (target === 0) continue;
            const row = logits.subarray((b * batch.seq + r) * vocab, (b * batch.seq + r + 1) * vocab);
            const max = Math.max(...row);
            const sum = row.reduce((s, x) => s + Math.exp(x - max), 0);
            total += Math.log(sum) + max - row[target]!;
            count++;
          }
        }
        assert.equal(count, 214);
        const loss = (await ref.readFloat32('loss'))[0]!;
        assert.ok(Math.abs(total / count - loss) <= 1e-4, `loss ${total / count} vs ${loss}`);
      } finally {
        await session.dispose();
      }
    } finally {
      await Promise.all([weights.source.close(), clip.close(), adapters.close()]);
    }
  } finally {
    await ref.close();
    rmSync(dir, { recursive: true });
  }
});
