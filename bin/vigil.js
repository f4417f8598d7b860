#!/usr/bin/env node
// Vigil command line entry point: registers tsx (the project runs TypeScript without a build)
// and hands over to cli/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
