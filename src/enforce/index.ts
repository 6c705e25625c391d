/** The only writer of agent responses: what to answer (responses.ts) and how it is written (write.ts). */
export * from './responses.js';
export { refuse, writeResponse } from './write.js';
