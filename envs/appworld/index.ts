/** appworld: the adapter that drives an AppWorld environment server over HTTP (see docs/toolworld.md). */
export {
  AppWorldEnv,
  appworldEnv,
  appworldOptionsSchema,
  appworldPrompt,
  appworldTaskIds,
  callToCode,
  extractCode,
  pythonLiteral,
  type AppWorldOptions,
} from './env.js';
export {
  AppWorldClient,
  EvaluateOutputSchema,
  InitializeOutputSchema,
  type AppWorldClientOptions,
  type EvaluateOutput,
  type InitializeOutput,
} from './client.js';
export { acquireServer, leaseFile, releaseServer } from './lease.js';
