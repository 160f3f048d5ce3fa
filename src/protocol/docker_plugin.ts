// The Docker plugin API as dockerd speaks it: content type, activation manifest, error shape.
import { z } from "zod";

/** The media type dockerd sends in Accept; every reply carries it. */
export const PLUGIN_CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";

/** What `/Plugin.Activate` answers. */
export const ACTIVATE_RESPONSE = { Implements: ["VolumeDriver"] } as const;

/** A failure reply: dockerd reads `Err` (and `Error` on IPAM calls). */
export const ErrorResponse = z.object({ Err: z.string() });
export type ErrorResponse = z.infer<typeof ErrorResponse>;
