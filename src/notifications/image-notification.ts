export type NotificationPriority = 'info' | 'warn' | 'error';

/** Glance's image notification event types. */
export const IMAGE_EVENTS = {
  create: 'image.create',
  prepare: 'image.prepare',
  upload: 'image.upload',
  activate: 'image.activate',
  update: 'image.update',
  delete: 'image.delete',
  send: 'image.send',
} as const;
export type ImageEventType = (typeof IMAGE_EVENTS)[keyof typeof IMAGE_EVENTS];

/** Payload of every event emitted on the in-process bus (name = eventType). */
export class ImageNotification {
  constructor(
    readonly eventType: ImageEventType,
    readonly priority: NotificationPriority,
    /** Image metadata with locations redacted, or an error message, or image.send's payload. */
    readonly payload: unknown,
    readonly timestamp: Date = new Date(),
  ) {}
}

/** Payload of image.send (Glance's image_send_notification). */
export interface ImageSendPayload {
  bytes_sent: number;
  image_id: string;
  owner_id: string | null;
  receiver_tenant_id: string | null;
  receiver_user_id: string | null;
  destination_ip: string | null;
}
