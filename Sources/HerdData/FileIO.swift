import Foundation

/// Size and modification time of a source file: a cache built from it is stale when either changes.
public struct SourceFingerprint: Sendable, Equatable, Codable {
    public var size: UInt64
    /// Modification time in nanoseconds since the epoch.
    public var modifiedNanoseconds: Int64

    public init(size: UInt64, modifiedNanoseconds: Int64) {
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
    }

    /// Reads `path`'s metadata; throws `fileNotFound` / `notARegularFile`.
    public init(path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { throw HerdDataError.fileNotFound(path: path) }
            throw HerdDataError.io(path: path, message: String(cString: strerror(errno)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw HerdDataError.notARegularFile(path: path) }
        size = UInt64(st.st_size)
        #if canImport(Darwin)
        modifiedNanoseconds = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
        modifiedNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
    }
}

/// A file descriptor opened for sequential reading.
final class FileReader {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        _ = try SourceFingerprint(path: path)
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw HerdDataError.io(path: path, message: String(cString: strerror(errno))) }
        self.path = path
    }

    deinit { Foundation.close(fd) }

    /// Reads until `buffer` is full or the file ends; returns the bytes read.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = Foundation.read(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw HerdDataError.io(path: path, message: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }
}

/// A file opened for writing (created or truncated), with positioned writes for headers and
/// positioned reads of what was written (for in-place rewrites).
final class FileWriter {
    let path: String
    private var fd: Int32
    private(set) var offset: UInt64 = 0

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw HerdDataError.io(path: path, message: String(cString: strerror(errno))) }
        self.path = path
    }

    deinit { if fd >= 0 { Foundation.close(fd) } }

    /// Appends `bytes` at the current end.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try write(bytes, at: offset)
        offset += UInt64(bytes.count)
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes `bytes` at `position` without moving the append offset (for headers).
    func write(_ bytes: UnsafeRawBufferPointer, at position: UInt64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(position) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw HerdDataError.io(path: path, message: "write failed: " + String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Fills `buffer` from `position` (bytes written earlier); a short file is an error.
    func read(into buffer: UnsafeMutableRawBufferPointer, at position: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(position) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw HerdDataError.io(path: path, message: "read failed: " + (n < 0 ? String(cString: strerror(errno)) : "unexpected end of file"))
            }
            done += n
        }
    }

    /// Closes the descriptor; further writes fail.
    func close() throws {
        guard fd >= 0 else { return }
        let rc = Foundation.close(fd)
        fd = -1
        if rc != 0 { throw HerdDataError.io(path: path, message: "close failed: " + String(cString: strerror(errno))) }
    }
}
