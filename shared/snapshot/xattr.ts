/** One extended attribute: its full name with namespace (`user.mime_type`) and value bytes. */
export interface Xattr {
  name: string;
  value: Buffer;
}
