/**
 * torch.optim.AdamW's update (torch/optim/adamw.py, single-tensor path) and clip_grad_norm_, written out in
 * float64 from their definitions, as the reference for the training graph's optimizer.
 */
export interface AdamWSettings {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export class ReferenceAdamW {
  private readonly m = new Map<string, Float64Array>();
  private readonly v = new Map<string, Float64Array>();
  step = 0;

  constructor(readonly settings: AdamWSettings, readonly decays: (name: string) => boolean) {}

  update(params: Map<string, Float64Array>, grads: Map<string, Float64Array>, lr = this.settings.lr): void {
    const { betas: [b1, b2], eps, weightDecay } = this.settings;
    this.step++;
    const bc1 = 1 - b1 ** this.step;
    const bc2 = 1 - b2 ** this.step;
    for (const [name, p] of params) {
      const g = grads.get(name)!;
      const m = this.m.get(name) ?? new Float64Array(p.length);
      const v = this.v.get(name) ?? new Float64Array(p.length);
      for (let i = 0; i < p.length; i++) {
        if (this.decays(name)) p[i]! *= 1 - lr * weightDecay;
        m[i] = m[i]! + (g[i]! - m[i]!) * (1 - b1);
        v[i] = v[i]! * b2 + g[i]! * g[i]! * (1 - b2);
        const denom = Math.sqrt(v[i]!) / Math.sqrt(bc2) + eps;
        p[i] = p[i]! - (lr / bc1) * (m[i]! / denom);
      }
      this.m.set(name, m);
      this.v.set(name, v);
    }
  }
}

/** torch.nn.utils.clip_grad_norm_: scales every gradient by min(1, maxNorm / (norm + 1e-6)); returns the norm. */
export function clipGradNorm(grads: Map<string, Float64Array>, maxNorm: number): number {
  let sum = 0;
  for (const g of grads.values()) for (const x of g) sum += x * x;
  const norm = Math.sqrt(sum);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i]! *= coef;
  return norm;
}
