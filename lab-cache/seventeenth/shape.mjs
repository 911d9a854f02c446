// The MRA model's shape: the plan's, with the ConvNeXt's DIMS and DEPTHS (comma lists) and the ViT's VIT_WIDTH from
// the environment when set.
import { FULL_PLAN } from '../../dist/src/lab/plans.js';
const list = (v) => v.split(',').map(Number);
const plan = FULL_PLAN.mra.shape;
export const shape = {
  ...plan,
  vit: { ...plan.vit, width: process.env.VIT_WIDTH ? Number(process.env.VIT_WIDTH) : plan.vit.width },
  convnext: { depths: process.env.DEPTHS ? list(process.env.DEPTHS) : plan.convnext.depths, dims: process.env.DIMS ? list(process.env.DIMS) : plan.convnext.dims },
};
