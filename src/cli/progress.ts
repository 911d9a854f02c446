/** A progress bar with an ETA on stderr, drawn only when stderr is a TTY (CONTRACT.md); silent otherwise. */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = performance.now();
  private readonly startDone: number;

  /** `done` counts work finished before this run (a resumed run): the ETA uses only this run's pace. */
  constructor(private readonly label: string, private readonly total: number, private done = 0) {
    this.startDone = done;
    this.draw();
  }

  advance(n = 1): void {
    this.done += n;
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
      `${eta === undefined ? '' : ` ETA ${formatSeconds(eta)}`} `);
  }
}

function formatSeconds(s: number): string {
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}
