/**
 * Test suites every implementation runs: `@rhizome/core/testing`. They use vitest.
 * @packageDocumentation
 */
export { runTransportContract, within } from './transport-contract.js';
export type { TransportContractHarness, TransportContractOptions } from './transport-contract.js';
export { runStoreContract } from './store-contract.js';
export type { StoreContractSubject, StoreContractOptions } from './store-contract.js';
