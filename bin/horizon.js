#!/usr/bin/env node
// Entry point of the `horizon` command: registers the TypeScript loader (so built-in code and users'
// environment modules written in TypeScript load directly), then runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
