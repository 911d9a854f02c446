export * from './elementwise.js';
export * from './tensor.js';
export * from './linear.js';
export * from './reduce.js';
export * from './nn.js';
export * from './attention.js';
export * from './torch-resize.js';
export type { Value } from '../ir.js';
export * from './dropout.js';
