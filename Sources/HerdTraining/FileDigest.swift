import Foundation
import HerdData

/// Size and SHA-256 of a file, as recorded in export and checkpoint manifests:
/// `{"sha256": "<64 hex digits>", "bytes": <size>}`.
public struct FileDigest: Codable, Equatable, Sendable {
    /// Lowercase hex SHA-256 of the file's contents.
    public var sha256: String
    /// File size in bytes.
    public var bytes: Int

    public init(sha256: String, bytes: Int) {
        self.sha256 = sha256
        self.bytes = bytes
    }

    /// The digest of `data`.
    public init(of data: Data) {
        self.init(sha256: SHA256.hex(of: data), bytes: data.count)
    }

    /// Checks that `directory/name` exists, has the recorded size and checksum, and returns it
    /// mapped so that the caller can parse it without reading it again.
    ///
    /// `remedy` is appended to every error message: what the user should do about it.
    ///
    /// NOTE: the size is compared before hashing: a truncated file (an interrupted copy, a full
    /// disk) is the common failure and deserves its own message, and it is found without reading.
    public func verify(_ name: String, in directory: URL, remedy: String) throws -> MappedFile {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ArtifactError(
                .missingFile(name), url,
                "\(url.path) is missing (the manifest lists it). \(remedy)")
        }
        let file: MappedFile
        do {
            file = try MappedFile(url: url)
        } catch {
            throw ArtifactError(.unreadableFile(name), url, "cannot read \(url.path): \(error). \(remedy)")
        }
        guard file.count == bytes else {
            let what = file.count < bytes ? "truncated" : "larger than recorded"
            throw ArtifactError(
                .sizeMismatch(name, expected: bytes, actual: file.count), url,
                "\(url.path) is \(what): it has \(file.count) bytes but the manifest records \(bytes) (size mismatch; an interrupted copy or a full disk?). \(remedy)")
        }
        file.adviseSequential()
        let actual = SHA256.hex(of: file.bytes)
        guard actual == sha256 else {
            throw ArtifactError(
                .checksumMismatch(name), url,
                "\(url.path) fails its SHA-256 checksum (expected \(sha256), found \(actual)): the file is corrupt or was modified after it was written. \(remedy)")
        }
        return file
    }
}
