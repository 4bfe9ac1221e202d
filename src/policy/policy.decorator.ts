import { SetMetadata } from '@nestjs/common';

export const POLICY_ACTION = 'glance:policy-action';

/** The Glance policy action a route requires (checked by PolicyGuard before the handler). */
export const Policy = (...actions: string[]) =>
  SetMetadata(POLICY_ACTION, actions);
