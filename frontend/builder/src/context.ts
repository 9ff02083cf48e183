import { createContext, useContext, useSyncExternalStore } from 'react';
import type { BuilderStore, StoreState } from './store';

export const StoreContext = createContext<BuilderStore | null>(null);

export function useBuilderStore(): BuilderStore {
  const store = useContext(StoreContext);
  if (!store) throw new Error('workflow-builder: component outside its store');
  return store;
}

/** Subscribes to one slice; components re-render only when that slice's value changes. */
export function useSlice<T>(select: (state: StoreState, store: BuilderStore) => T): T {
  const store = useBuilderStore();
  return useSyncExternalStore(store.subscribe, () => select(store.state, store));
}
