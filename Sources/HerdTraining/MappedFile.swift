import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole regular file mapped read-only into memory.
///
/// NOTE: a map instead of `Data(contentsOf:)` so that multi-gigabyte weight files are neither
/// copied into the heap nor read twice (once to checksum, once to parse): the page cache is the
/// only copy. The mapping stays valid after the file is unlinked (pruned checkpoints), but
/// truncating the file while it is mapped makes access past the new end fault (SIGBUS) — Herd
/// never truncates files in place, it replaces them by rename.
public final class MappedFile: @unchecked Sendable {
    /// The file mapped.
    public let url: URL
    /// Its size in bytes.
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    /// Maps the regular file at `url`.
    public init(url: URL) throws {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError("open", path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileSystemError("stat", path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FileSystemError("map", path, detail: "not a regular file")
        }
        count = Int(info.st_size)
        if count == 0 {
            base = nil  // mmap of zero bytes is an error; an empty buffer needs no mapping.
        } else {
            let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else { throw FileSystemError("mmap", path) }
            base = p
        }
    }

    /// The file's bytes; valid while this object is alive.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Hints the kernel to read ahead aggressively (for a front-to-back pass such as hashing).
    public func adviseSequential() {
        if let base { _ = madvise(base, count, MADV_SEQUENTIAL) }
    }

    deinit {
        if let base { munmap(base, count) }
    }
}
