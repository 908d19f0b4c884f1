/** Writes docs/errors.md from the list of error codes in core/errors.ts (`npm run docs:errors`). */
import { writeFileSync } from 'node:fs';
import { renderErrorReference } from '../core/errors.js';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorReference());
