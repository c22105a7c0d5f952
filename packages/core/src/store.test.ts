import { MemoryStore } from './store.js';
import { runStoreContract } from './testing/store-contract.js';

runStoreContract('MemoryStore', () => ({ store: new MemoryStore() }));
