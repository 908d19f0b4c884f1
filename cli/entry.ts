/**
 * Entry point of the single-file build of the CLI (scripts/bundle-gpu.sh cli/entry.ts → dist/gpu/entry.mjs)
 * for machines without node_modules. Worker processes are spawned from the same file (HORIZON_BIN).
 */
import { fileURLToPath } from 'node:url';
import { main } from './main.js';

process.env.HORIZON_BIN ??= fileURLToPath(import.meta.url);
process.exitCode = await main(process.argv);
