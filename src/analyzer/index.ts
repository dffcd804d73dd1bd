export { analyze, analyzeSync, type EngineOptions } from './engine.js';
export * from './types.js';
