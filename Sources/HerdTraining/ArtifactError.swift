import Foundation

/// Why a model export or a checkpoint cannot be written or loaded. `description` is a complete,
/// user-facing sentence that says what is wrong and what to do about it.
public struct ArtifactError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure, for programs that react to it.
    public enum Kind: Equatable, Sendable {
        /// No directory at the path.
        case missingDirectory
        /// The directory has no manifest.
        case missingManifest
        /// The manifest is not valid JSON of the expected form.
        case invalidManifest
        /// The manifest's `format_version` is not one this build reads.
        case unsupportedFormatVersion(Int)
        /// A file the manifest lists is absent.
        case missingFile(String)
        /// A file cannot be opened or mapped.
        case unreadableFile(String)
        /// A file's size differs from the manifest (usually truncation).
        case sizeMismatch(String, expected: Int, actual: Int)
        /// A file's SHA-256 differs from the manifest (corruption or tampering).
        case checksumMismatch(String)
        /// A file has the right checksum but its contents are invalid (e.g. not safetensors).
        case invalidFile(String)
        /// The caller passed something unusable (a bad name, invalid JSON, …).
        case invalidArgument
        /// The destination exists and is not something Herd may replace.
        case destinationExists
    }

    public let kind: Kind
    /// The file or directory concerned.
    public let url: URL
    public let description: String

    public init(_ kind: Kind, _ url: URL, _ description: String) {
        self.kind = kind
        self.url = url
        self.description = description
    }
}
