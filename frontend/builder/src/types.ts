import type { Edge, Node } from '@xyflow/react';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Config = Record<string, unknown>;

export interface GraphNode {
  id: string;
  type: string;
  label: string;
  position: { x: number; y: number };
  config: Config;
  [extra: string]: unknown;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  source_handle?: string | null;
  target_handle?: string | null;
  [extra: string]: unknown;
}

export interface Graph {
  schema_version: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
  [extra: string]: unknown;
}

export interface NodeTypeInfo {
  type: string;
  label: string;
  group: string;
  description?: string;
  min_in?: number;
  max_in?: number | null;
  min_out?: number;
  max_out?: number | null;
  fan_out?: boolean;
  default_config?: Config;
}

export interface Agent {
  id: string;
  name: string;
  model?: string;
  role?: string;
  [extra: string]: unknown;
}

export interface Catalog {
  node_types: NodeTypeInfo[];
  agents: Agent[];
  can_edit?: boolean;
}

export type Status = 'waiting' | 'running' | 'done' | 'failed' | 'skipped';
export type Mark = 'added' | 'removed' | 'changed';

export interface Issue {
  level: 'error' | 'warning';
  code?: string;
  message: string;
}

/** What a canvas node carries: the graph node minus id and position, which React Flow owns. */
export interface WfNodeData extends Record<string, unknown> {
  type: string;
  label: string;
  config: Config;
  /** Unknown keys of the graph node, kept so a round trip never drops them. */
  extra: Record<string, unknown>;
}

export interface WfEdgeData extends Record<string, unknown> {
  source_handle: string | null;
  target_handle: string | null;
  extra: Record<string, unknown>;
}

export type WfNode = Node<WfNodeData, 'wf'>;
export type WfEdge = Edge<WfEdgeData, 'wf'>;

/** One output handle: `id` null is the unlabelled default output (edges omit source_handle). */
export interface OutputHandle {
  id: string | null;
  label: string;
}
