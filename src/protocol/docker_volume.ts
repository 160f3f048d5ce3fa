// VolumeDriver.* requests and responses, wire-exact (PascalCase as dockerd sends them).
import { z } from "zod";
import { VOLUME_NAME_REGEXP } from "../../machines/volume_machine.ts";
import { OptionalStringMap } from "../../machines/wire_map.ts";

/** Docker's volume name rule (kept with the machine), plus a length a directory name can hold. */
export { VOLUME_NAME_REGEXP };
const VOLUME_NAME_MAX = 255;

export const VolumeName = z
  .string({ error: "Name must be a string" })
  .max(VOLUME_NAME_MAX, `Name must be at most ${VOLUME_NAME_MAX} characters`)
  .regex(VOLUME_NAME_REGEXP, "Name must match [a-zA-Z0-9][a-zA-Z0-9_.-]+");

// Go marks Opts omitempty and sends null when the user gave none: absent and null are the same.
export const CreateRequest = z.object({
  Name: VolumeName,
  Opts: OptionalStringMap,
});
export type CreateRequest = z.infer<typeof CreateRequest>;

export const NameRequest = z.object({ Name: VolumeName });
export type NameRequest = z.infer<typeof NameRequest>;

export const MountRequest = z.object({
  Name: VolumeName,
  ID: z.string({ error: "ID must be a string" }).min(1, "ID must not be empty")
    .max(256, "ID must be at most 256 characters"),
});
export type MountRequest = z.infer<typeof MountRequest>;

/** `List` and `Capabilities` carry `{}`; anything is accepted. */
export const EmptyRequest = z.object({}).loose();

/** The volume as Get and List describe it. CreatedAt is RFC 3339 or absent, never "". */
export type VolumeInfo = {
  Name: string;
  Mountpoint?: string;
  CreatedAt?: string;
  Status?: Record<string, unknown>;
};

export type MountResponse = { Mountpoint: string };
export type GetResponse = { Volume: VolumeInfo };
export type ListResponse = { Volumes: VolumeInfo[] };
export const CAPABILITIES_RESPONSE = { Capabilities: { Scope: "local" } } as const;
