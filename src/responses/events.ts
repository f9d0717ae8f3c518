import type { Schemas } from '../contract.js';
import type { EventRow } from '../database/schema.js';

export function toEventResponse(row: EventRow): Schemas['Event'] {
  return {
    id: row.id,
    type: row.type,
    resource_type: row.resource_type as Schemas['Event']['resource_type'],
    resource_id: row.resource_id,
    actor: row.actor === 'system' ? { type: 'system', id: null } : { type: 'api_key', id: row.actor },
    request_id: row.request_id,
    occurred_at: row.occurred_at.toISOString(),
    data: row.data as Schemas['Event']['data'],
    previous: row.previous as Schemas['Event']['previous'],
  };
}
