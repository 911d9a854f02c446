/** Every gradient rule, by op type (see autodiff.ts; the rules themselves are in grad-rules-*.ts). */
import type { GradRule } from './autodiff-context.js';
import { elementwiseRules } from './grad-rules-elementwise.js';
import { nnRules } from './grad-rules-nn.js';
import { tensorRules } from './grad-rules-tensor.js';

export const gradRules: Readonly<Record<string, GradRule>> = { ...elementwiseRules, ...tensorRules, ...nnRules };
