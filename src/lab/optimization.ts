/** The lab's AdamW and clipping, for every model it trains with egret's engine and for `egret lab readout`. */
export const LAB_OPTIMIZATION = { optimizer: { betas: [0.9, 0.98] as [number, number], weightDecay: 0.05 }, clipGradNorm: 1 };
