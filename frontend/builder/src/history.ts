import type { Graph } from './types';

/** How long consecutive changes with the same group key stay one undo step. */
export const GROUP_WINDOW_MS = 1000;
const LIMIT = 200;

interface Entry {
  graph: Graph;
  /** Serialised once so "did anything change?" is a string comparison. */
  text: string;
  group: string | null;
  time: number;
}

export interface PushOptions {
  group?: string | null;
  now?: number;
}

/**
 * Undo history of whole-graph snapshots. Selection and live decorations are deliberately not
 * part of a snapshot: undo restores the document, not what the user happened to have clicked.
 */
export class History {
  private past: Entry[] = [];
  private future: Entry[] = [];
  private current: Entry;

  constructor(initial: Graph) {
    this.current = entry(initial, null, 0);
  }

  get present(): Graph {
    return structuredClone(this.current.graph);
  }

  get presentText(): string {
    return this.current.text;
  }

  /** Records `graph`; false when it equals the present (nothing to record). */
  push(graph: Graph, { group = null, now = Date.now() }: PushOptions = {}): boolean {
    const next = entry(graph, group, now);
    if (next.text === this.current.text) {
      // Keeps a burst alive while the user pauses on an unchanged value.
      if (group !== null && group === this.current.group) this.current.time = now;
      return false;
    }
    const merge =
      group !== null &&
      group === this.current.group &&
      this.future.length === 0 &&
      this.past.length > 0 &&
      now - this.current.time <= GROUP_WINDOW_MS;
    if (!merge) {
      this.past.push(this.current);
      if (this.past.length > LIMIT) this.past.shift();
    }
    this.current = next;
    this.future = [];
    return true;
  }

  /** Starts over from `graph`, e.g. after a load that is not itself an edit. */
  reset(graph: Graph): void {
    this.past = [];
    this.future = [];
    this.current = entry(graph, null, 0);
  }

  canUndo(): boolean {
    return this.past.length > 0;
  }

  canRedo(): boolean {
    return this.future.length > 0;
  }

  undo(): Graph | null {
    const previous = this.past.pop();
    if (!previous) return null;
    this.future.push(closed(this.current));
    this.current = closed(previous);
    return this.present;
  }

  redo(): Graph | null {
    const next = this.future.pop();
    if (!next) return null;
    this.past.push(closed(this.current));
    this.current = closed(next);
    return this.present;
  }

  get sizes(): { past: number; future: number } {
    return { past: this.past.length, future: this.future.length };
  }
}

function entry(graph: Graph, group: string | null, time: number): Entry {
  const copy = structuredClone(graph);
  return { graph: copy, text: JSON.stringify(copy), group, time };
}

// After an undo or redo the next edit starts a new step, even with the same group key.
function closed(item: Entry): Entry {
  return { ...item, group: null };
}
