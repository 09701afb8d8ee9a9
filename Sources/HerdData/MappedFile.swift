import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole regular file mapped read-only into memory (unmapped on deinit).
///
/// NOTE: a map instead of `read()` / `Data(contentsOf:)`: the CSV reader's workers, the table
/// reader's column copies and the checksum of multi-gigabyte weight files touch the page cache
/// directly, with no copy into the heap and no second read. The mapping stays valid after the file
/// is unlinked (pruned checkpoints), but truncating the file while it is mapped makes access past
/// the new end fault (SIGBUS) — Herd never truncates files in place, it replaces them by rename.
public final class MappedFile: @unchecked Sendable {
    /// The file mapped.
    public let url: URL
    /// Its size in bytes.
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    /// The file's path.
    public var path: String { url.path }

    /// Maps the regular file at `path`; throws `HerdDataError.fileNotFound`, `.notARegularFile` or
    /// `.io` (with the OS error).
    public convenience init(path: String) throws {
        try self.init(url: URL(fileURLWithPath: path))
    }

    /// Maps the regular file at `url` (see `init(path:)`).
    public init(url: URL) throws {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw HerdDataError.fileNotFound(path: path) }
            throw HerdDataError.io(path: path, message: "open failed: " + String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw HerdDataError.io(path: path, message: "stat failed: " + String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw HerdDataError.notARegularFile(path: path) }
        count = Int(info.st_size)
        if count == 0 {
            base = nil  // mmap of zero bytes is an error; an empty buffer needs no mapping.
        } else {
            let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw HerdDataError.io(path: path, message: "mmap failed: " + String(cString: strerror(errno)))
            }
            base = p
        }
    }

    /// The file's bytes; valid while this object is alive.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Hints the kernel to read ahead aggressively (for a front-to-back pass such as parsing or hashing).
    public func adviseSequential() {
        if let base { _ = madvise(base, count, MADV_SEQUENTIAL) }
    }

    deinit {
        if let base { munmap(base, count) }
    }
}
