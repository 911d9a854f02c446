/** Where the lab's trained models ship inside the package: models/lab-mra/, models/lab-lowres/ (docs/LAB.md). */
import { fileURLToPath } from 'node:url';

export const SHIPPED_MODELS_DIR = fileURLToPath(new URL('../../../models/', import.meta.url));
