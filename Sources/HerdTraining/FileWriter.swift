import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a new file sequentially, hashing the bytes on the way, and makes it durable on `finish()`.
///
/// NOTE: hashing while writing means a manifest's checksum costs no second pass over a large
/// weights file, and it covers exactly the bytes handed to the kernel.
public final class FileWriter {
    /// The file being written.
    public let url: URL
    private var fd: Int32
    private var hasher = SHA256()
    /// Bytes written so far.
    public private(set) var bytesWritten = 0

    /// Creates `url`, which must not exist yet.
    public init(creatingNew url: URL) throws {
        self.url = url
        fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileSystemError("create", url.path) }
    }

    /// Appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(fd >= 0, "write after finish()")
        guard let start = bytes.baseAddress else { return }
        // NOTE: 4 MiB chunks: hashed while still in cache, then written; also under the ~2 GiB
        // limit Linux puts on a single write(2).
        let chunk = 4 << 20
        var offset = 0
        while offset < bytes.count {
            let n = min(chunk, bytes.count - offset)
            let piece = UnsafeRawBufferPointer(start: start + offset, count: n)
            hasher.update(piece)
            try writeAll(piece)
            offset += n
        }
        bytesWritten += bytes.count
    }

    /// Appends the bytes of `data`.
    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Appends `bytes`.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    private func writeAll(_ piece: UnsafeRawBufferPointer) throws {
        var p = piece.baseAddress!
        var left = piece.count
        while left > 0 {
            let n = systemWrite(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystemError("write", url.path)
            }
            p += n
            left -= n
        }
    }

    /// Flushes the file to stable storage (`fsync`), closes it, and returns its size and checksum.
    /// The directory entry is not synced here: that is the job of whoever renames the file or its
    /// directory into place.
    public func finish() throws -> FileDigest {
        precondition(fd >= 0, "finish() called twice")
        let result = fsync(fd)
        let syncErrno = errno
        let closeResult = close(fd)
        fd = -1
        guard result == 0 else { throw FileSystemError("fsync", url.path, code: syncErrno) }
        guard closeResult == 0 else { throw FileSystemError("close", url.path) }
        return FileDigest(sha256: hasher.finalizeHex(), bytes: bytesWritten)
    }

    deinit {
        if fd >= 0 { close(fd) }
    }
}
