import { describe, expect, it } from 'vitest';
import { layoutPositions } from '../src/layout';

describe('layoutPositions', () => {
  it('lays a chain out top to bottom and survives cycles', () => {
    const nodes = ['a', 'b', 'c'].map((id) => ({ id, width: 200, height: 60 }));
    const edges = [
      { source: 'a', target: 'b' },
      { source: 'b', target: 'c' },
      { source: 'c', target: 'b' },
      { source: 'c', target: 'missing' },
    ];
    const positions = layoutPositions(nodes, edges);
    expect(positions.get('a')!.y).toBeLessThan(positions.get('b')!.y);
    expect(positions.get('b')!.y).toBeLessThan(positions.get('c')!.y);
    expect(layoutPositions(nodes, edges)).toEqual(positions);
  });
});
