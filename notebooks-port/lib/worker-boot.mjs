// Worker threads do not inherit tsx's TypeScript loader in every launch mode (tsx CLI vs
// node --import tsx), so each worker registers it itself before loading the TypeScript module.
import { register } from "tsx/esm/api";
import { workerData } from "node:worker_threads";

register();
await import(workerData.module);
