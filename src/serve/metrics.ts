/** The server's Prometheus metrics, in the text exposition format 0.0.4. */
import type { BatchState } from './batch-state.js';

type Labels = Record<string, string>;

const labelText = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/[\\"]/g, '\\$&').replace(/\n/g, '\\n')}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
};

class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, { value }] of this.values) lines.push(`${this.name}${key} ${value}`);
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    return lines.join('\n');
  }
}

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.buckets.forEach((le, i) => {
      if (value <= le) this.counts[i]!++;
    });
    this.sum += value;
    this.count++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket{le="${le}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

const gauge = (name: string, help: string, value: number) => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}`;
/** A counter kept elsewhere (the engine's worker), rendered from its current value. */
const counterOf = (name: string, help: string, value: number) => `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${value}`;

const SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class Metrics {
  readonly requests = new Counter('egret_http_requests_total', 'HTTP requests answered, by path and status.');
  readonly promptTokens = new Counter('egret_prompt_tokens_total', 'Prompt tokens of generations (visual tokens included).');
  readonly completionTokens = new Counter('egret_completion_tokens_total', 'Tokens generated (cancelled generations included).');
  readonly cancelled = new Counter('egret_cancelled_generations_total', 'Generations stopped because their client went away.');
  readonly latency = new Histogram('egret_request_duration_seconds', 'Chat completion requests, from arrival to the last byte.', SECONDS);
  readonly queueWait = new Histogram('egret_queue_wait_seconds', 'Time chat completion requests waited for a turn.', SECONDS);
  readonly firstToken = new Histogram('egret_time_to_first_token_seconds', 'From arrival to the first generated text.', SECONDS);

  render(state: { queued: number; active: number; batch: BatchState }): string {
    return [
      this.requests.render(),
      this.promptTokens.render(),
      this.completionTokens.render(),
      this.cancelled.render(),
      this.latency.render(),
      this.queueWait.render(),
      this.firstToken.render(),
      gauge('egret_queue_length', 'Requests waiting for a turn.', state.queued),
      gauge('egret_active_generations', 'Generations running (preparing their prompt, waiting for their prefill, or decoding).', state.active),
      gauge('egret_batch_size', 'Sequences in the running decode batch (one decoder call per step for all of them).', state.batch.batchSize),
      gauge('egret_prefill_waiting', 'Generations whose prompt waits for the running decode step to end, to be prefilled.', state.batch.waiting),
      counterOf('egret_decode_steps_total', 'Decoder calls that decoded one token of every sequence in the batch.', state.batch.decodeSteps),
      counterOf('egret_decode_rows_total', 'Tokens those decode steps produced (rows ÷ steps = the mean batch size).', state.batch.decodeRows),
      counterOf('egret_prefills_total', 'Prefill calls (prompts that arrive together share one).', state.batch.prefills),
      counterOf('egret_prefill_rows_total', 'Prompts prefilled.', state.batch.prefillRows),
      gauge('process_resident_memory_bytes', 'Resident memory of the server process (its worker threads included).', process.memoryUsage().rss),
    ].join('\n') + '\n';
  }
}
