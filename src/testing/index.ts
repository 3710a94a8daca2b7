/**
 * Test helpers for edgellm users: a scripted runtime to test handlers and apps without a model.
 * @module
 */
export { MockRuntime, type MockRuntimeOptions, type MockScript } from './mock-runtime.js';
