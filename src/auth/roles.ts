import type { Schemas } from '../contract.js';

type Role = Schemas['ApiKeyRole'];
type Scope = Schemas['Scope'];

/** What each role may do; the table in openapi.yaml's description says the same. */
export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  viewer: ['read'],
  editor: ['read', 'write'],
  analyst: ['read', 'analytics'],
  admin: ['read', 'write', 'analytics', 'keys', 'admin'],
};

/** The platform operator's key creates tenants and nothing else. */
export const PLATFORM_SCOPE = 'platform';
