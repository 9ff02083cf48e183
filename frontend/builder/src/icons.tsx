import { memo } from 'react';

// Simple 24×24 outline glyphs; an unknown type gets the generic box rather than nothing.
const PATHS: Record<string, string> = {
  start: 'M8 5v14l11-7z',
  end: 'M6 6h12v12H6z',
  agent: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 8a7 7 0 0 1 14 0',
  parallel: 'M5 4v16M12 4v16M19 4v16',
  join: 'M5 4c0 8 7 8 7 16M19 4c0 8-7 8-7 16',
  router: 'M4 12h6l4-6h6M10 12l4 6h6',
  loop: 'M4 12a8 8 0 0 1 14-5l2 2M20 12a8 8 0 0 1-14 5l-2-2M20 4v5h-5M4 20v-5h5',
  group_chat: 'M4 5h11v8H8l-4 3zM9 16h7l4 3v-9h-2',
  handoff: 'M4 8h13l-3-3M20 16H7l3 3',
  vote: 'M5 12l4 4 10-10M5 20h14',
  consensus: 'M12 3l2.5 5 5.5.8-4 3.9.9 5.5-4.9-2.6-4.9 2.6.9-5.5-4-3.9 5.5-.8zM9.5 12l2 2 3.5-3.5',
  human: 'M12 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM5 20c1-4 4-6 7-6s6 2 7 6',
  tool: 'M14 6a4 4 0 0 0 5 5l-9 9-4-4 9-9a4 4 0 0 0-1-1z',
  subworkflow: 'M4 4h7v7H4zM13 13h7v7h-7zM11 7.5h4.5V13',
  remote_agent: 'M6 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM18 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM9 12h6M13 10l2 2-2 2',
};
const GENERIC = 'M4 6h16v12H4zM4 10h16';

export const TypeIcon = memo(function TypeIcon({ type }: { type: string }) {
  return (
    <svg className="wf-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
      <path d={PATHS[type] ?? GENERIC} />
    </svg>
  );
});
