import Foundation
import HerdData

/// A whole file mapped read-only into memory (unmapped on deinit).
///
/// NOTE: mmap instead of read(): the CSV reader's workers and the binary reader's column copies
/// touch the page cache directly, with no intermediate buffer.
final class MappedFile: @unchecked Sendable {
    let path: String
    let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    init(path: String) throws {
        let fp = try SourceFingerprint(path: path)
        self.path = path
        guard fp.size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapped = false
            return
        }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw HerdDataError.io(path: path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard let p = mmap(nil, Int(fp.size), PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw HerdDataError.io(path: path, message: "mmap failed: " + String(cString: strerror(errno)))
        }
        madvise(p, Int(fp.size), MADV_SEQUENTIAL)
        bytes = UnsafeRawBufferPointer(start: p, count: Int(fp.size))
        mapped = true
    }

    /// Drops the mapping's pages inside `range` (whole pages only) from this process: they stay
    /// in the page cache and read back from it if touched again. For bytes already consumed
    /// (copied out), so they stop counting in the resident set.
    func release(_ range: UnsafeRawBufferPointer) {
        guard mapped, let start = range.baseAddress, range.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = (Int(bitPattern: start) + page - 1) / page * page
        let hi = (Int(bitPattern: start) + range.count) / page * page
        if hi > lo { madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, MADV_DONTNEED) }
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress!), bytes.count) }
    }
}
