/** Who is calling: built once per request by the auth middleware. */
export class RequestContext {
  constructor(
    readonly tenant: string | null,
    readonly user: string | null,
    readonly roles: readonly string[],
    readonly isAdmin: boolean,
    readonly ownerIsTenant: boolean = true,
    readonly authToken: string | null = null,
    readonly requestId: string = '',
  ) {}

  /** The owner recorded on images this caller creates (Glance's context.owner). */
  get owner(): string | null {
    return this.ownerIsTenant ? this.tenant : this.user;
  }
}
