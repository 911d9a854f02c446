import type { LoadProgress } from '../runtime/session.js';

/** A progress bar with an ETA on stderr, drawn only when stderr is a TTY (CONTRACT.md); silent otherwise. */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = performance.now();
  private readonly startDone: number;
  private detail = '';

  /** `done` counts work finished before this run (a resumed run): the ETA uses only this run's pace. */
  constructor(private readonly label: string, private readonly total: number, private done = 0) {
    this.startDone = done;
    this.draw();
  }

  /** `detail` (e.g. a training step's loss and rate) is shown after the count until the next call. */
  advance(n = 1, detail = ''): void {
    this.done += n;
    this.detail = detail;
    this.draw();
  }

  /** Sets how much is done (a producer that reports totals so far) and the detail; redraws only when either changes. */
  set(done: number, detail = this.detail): void {
    if (done === this.done && detail === this.detail) return;
    this.done = done;
    this.detail = detail;
    this.draw();
  }

  finish(): void {
    if (this.tty) process.stderr.write('\n');
  }

  private draw(): void {
    if (!this.tty) return;
    const elapsed = (performance.now() - this.started) / 1000;
    const ran = this.done - this.startDone;
    const eta = ran > 0 ? (elapsed / ran) * (this.total - this.done) : undefined;
    const width = 30;
    const filled = this.total ? Math.round((this.done / this.total) * width) : width;
    process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total}` +
      `${this.detail ? ` ${this.detail}` : ''}${eta === undefined ? '' : ` ETA ${formatSeconds(eta)}`} `);
  }
}

function formatSeconds(s: number): string {
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** Weights below this load in about a second: no bar. */
const MIN_SHOWN_BYTES = 100e6;

/**
 * What loading a model is doing, on stderr when it is a TTY: a bar (in MB) while the weights are read (and
 * quantised), then ORT's optimisation or the cached model's load with the seconds each took. `report` is the
 * loader's progress callback; `finish` ends the display once the model is ready.
 */
export class LoadDisplay {
  private readonly tty = process.stderr.isTTY === true;
  private bar: Progress | undefined;
  private phase: { label: string; started: number } | undefined;

  constructor(private readonly weightsLabel: string) {}

  readonly report = (event: LoadProgress): void => {
    if (!this.tty) return;
    if (event.phase === 'weights') {
      if (event.total < MIN_SHOWN_BYTES) return;
      this.bar ??= new Progress(`${this.weightsLabel} (MB)`, Math.round(event.total / 1e6));
      this.bar.set(Math.round(event.done / 1e6));
      return;
    }
    this.endPhase();
    const label = event.phase === 'optimising' ? 'optimising with ONNX Runtime' : 'loading the cached model';
    this.phase = { label, started: performance.now() };
    process.stderr.write(`${label}…`);
  };

  finish(): void {
    if (this.tty) this.endPhase();
  }

  private endPhase(): void {
    this.bar?.finish();
    this.bar = undefined;
    if (this.phase) process.stderr.write(` ${((performance.now() - this.phase.started) / 1000).toFixed(1)} s\n`);
    this.phase = undefined;
  }
}
