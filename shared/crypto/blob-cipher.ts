/**
 * How a format that stores shared blobs (the chunked format's chunks, trees and indexes) names
 * and protects them, without ever seeing a key (docs/formats.md, "Encryption"). One per
 * repository: a plain cipher for unencrypted repositories (ids still keyed, so turning encryption
 * on never changes ids), an AEAD one for encrypted repositories (issue "Encryption at rest").
 */
export interface BlobCipher {
  /** The repository key the blobs are sealed under; undefined when blobs are stored in the clear. */
  readonly keyId: string | undefined;
  /**
   * The id of a plaintext blob: 64 lowercase hex characters, HMAC-SHA256 of the plaintext under
   * the repository's id key, so equal content cannot be fingerprinted across repositories.
   */
  blobId(plaintext: Buffer): string;
  /**
   * Seals a stored object's bytes. `aad` binds the ciphertext to where it belongs (e.g. the blob
   * id), so a sealed object moved elsewhere fails to open. Identity for a plain cipher.
   */
  seal(plaintext: Buffer, aad: Buffer): Buffer;
  /**
   * Opens what `seal` produced; `what` names the object in the error (e.g. `blob <id>`).
   * @throws IntegrityError naming `what` when the bytes were tampered with, or sealed under another key or aad.
   */
  open(sealed: Buffer, aad: Buffer, what?: string): Buffer;
}
