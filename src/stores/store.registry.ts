import type { ImageStore } from './image-store.interface.js';
import { StoreError, StoreErrorCode } from './store.error.js';

/** The configured stores, found by name (x-image-meta-store) or by a location's URL scheme. */
export class StoreRegistry {
  private readonly byName = new Map<string, ImageStore>();
  private readonly byScheme = new Map<string, ImageStore>();

  constructor(
    stores: ImageStore[],
    private readonly defaultName: string,
  ) {
    for (const store of stores) {
      this.byName.set(store.name, store);
      for (const scheme of store.schemes) this.byScheme.set(scheme, store);
    }
    if (!this.byName.has(defaultName)) {
      throw new Error(
        `DEFAULT_STORE=${defaultName} is not one of the configured stores: ${this.names().join(', ')}`,
      );
    }
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  get default(): ImageStore {
    return this.byName.get(this.defaultName)!;
  }

  /** The writable store called `name`, or a StoreError (the API maps it to 400). */
  writable(name: string): ImageStore {
    const store = this.byName.get(name) ?? this.byScheme.get(name);
    if (!store || !store.writable) {
      throw new StoreError(StoreErrorCode.UnknownScheme, `Store for scheme ${name} not found`);
    }
    return store;
  }

  has(name: string): boolean {
    return this.byName.has(name) || this.byScheme.has(name);
  }

  forLocation(location: string): ImageStore {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(location)?.[1]?.toLowerCase();
    const store = scheme ? this.byScheme.get(scheme) : undefined;
    if (!store) {
      throw new StoreError(StoreErrorCode.UnknownScheme, `Unknown scheme in location`);
    }
    return store;
  }

  all(): ImageStore[] {
    return [...this.byName.values()];
  }
}
