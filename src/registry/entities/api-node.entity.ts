import { Column, Entity, PrimaryColumn } from 'typeorm';
import { TIMESTAMP_COLUMN } from './column-types.js';

/** One row per API node: its heartbeat tells others whether its uploads are still alive. */
@Entity('api_nodes')
export class ApiNodeEntity {
  @PrimaryColumn({ name: 'node_id', type: 'varchar', length: 255 })
  nodeId: string;

  @Column({ name: 'started_at', ...TIMESTAMP_COLUMN })
  startedAt: string;

  @Column({ name: 'heartbeat_at', ...TIMESTAMP_COLUMN })
  heartbeatAt: string;
}
