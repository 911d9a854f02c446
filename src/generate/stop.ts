/**
 * Cuts streamed text at the first stop string. Text that could still become the start of a stop string is
 * held back until it cannot, so a client never sees part of a stop string.
 */
export class StopMatcher {
  private pending = '';
  private stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Adds text; `final` releases what is held back. Returns what may be shown now and whether a stop matched. */
  push(text: string, final = false): { emit: string; stopped: boolean } {
    if (this.stopped) return { emit: '', stopped: true };
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const at = s ? this.pending.indexOf(s) : -1;
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      const emit = this.pending.slice(0, cut);
      this.pending = '';
      return { emit, stopped: true };
    }
    if (final) {
      const emit = this.pending;
      this.pending = '';
      return { emit, stopped: false };
    }
    const hold = this.heldBack();
    const emit = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { emit, stopped: false };
  }

  /** Length of the longest suffix of the pending text that is a proper prefix of some stop string. */
  private heldBack(): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.pending.length); n > best; n--) {
        if (this.pending.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
