#!/usr/bin/env node
// `npx caption ...`: registers the TypeScript loader, then runs the CLI.
import { register } from "tsx/esm/api";

register();
await import("./cli.ts");
