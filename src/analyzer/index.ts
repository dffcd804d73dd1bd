export { analyze, type EngineOptions } from './engine.js';
export * from './types.js';
