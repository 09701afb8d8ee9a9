import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Atomic replacement of files and directories: readers (and a crash) see the old version or the
/// complete new one, never a mixture or a prefix.
///
/// The recipe: write everything under a temporary name in the destination's directory, `fsync` the
/// data, `rename` over the destination, then `fsync` the directory so the rename itself survives a
/// power loss.
///
/// NOTE: the temporary must live in the same directory (hence the same file system) because
/// `rename` is only atomic within one file system.
public enum AtomicFile {
    /// Writes a file atomically: `body` streams its contents into a temporary file, which then
    /// replaces `url`. Returns the size and SHA-256 of what was written.
    @discardableResult
    public static func write(to url: URL, _ body: (FileWriter) throws -> Void) throws -> FileDigest {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(randomSuffix())")
        let writer = try FileWriter(creatingNew: temporary)
        do {
            try body(writer)
            let digest = try writer.finish()
            try rename(temporary, to: url)
            try syncDirectory(directory)
            return digest
        } catch {
            unlink(temporary.path)
            throw error
        }
    }

    /// Writes `data` to `url` atomically.
    @discardableResult
    public static func write(_ data: Data, to url: URL) throws -> FileDigest {
        try write(to: url) { try $0.write(data) }
    }

    /// Creates the directory `url` atomically: `body` fills a fresh temporary directory
    /// `<name>.tmp-<random>` next to it (each file written with `FileWriter` and `finish()`ed), which
    /// is then renamed to `url`. If `body` throws, the temporary is removed and nothing changes.
    ///
    /// An existing directory at `url` is replaced only if it is empty or `mayReplace` accepts it
    /// (say, because it holds a manifest): it is renamed aside to `<name>.old-<random>`, the new one
    /// renamed in, and the old one removed.
    ///
    /// NOTE: POSIX cannot rename a directory over a non-empty one, hence the move aside. A crash
    /// between the two renames leaves no `url`, only `<name>.old-*` and `<name>.tmp-*`, each
    /// complete; nothing half-written is ever visible under `url`. (Linux's `renameat2` with
    /// `RENAME_EXCHANGE` would close that window but is not portable.)
    @discardableResult
    public static func writeDirectory<T>(
        at url: URL, mayReplace: (URL) -> Bool = { _ in false }, _ body: (URL) throws -> T
    ) throws -> T {
        let fm = FileManager.default
        let parent = url.deletingLastPathComponent()
        let name = url.lastPathComponent
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let existing = try kindOfItem(at: url)
        if existing == .other {
            throw ArtifactError(.destinationExists, url, "\(url.path) exists and is not a directory; remove it or choose another destination.")
        }
        if existing == .directory, !(try isEmptyDirectory(url)), !mayReplace(url) {
            throw ArtifactError(
                .destinationExists, url,
                "\(url.path) exists and does not look like something Herd wrote; refusing to replace it. Remove it or choose another destination.")
        }

        let temporary = parent.appendingPathComponent("\(name).tmp-\(randomSuffix())")
        guard mkdir(temporary.path, 0o755) == 0 else { throw FileSystemError("mkdir", temporary.path) }
        let result: T
        do {
            result = try body(temporary)
            try syncDirectory(temporary)
        } catch {
            try? fm.removeItem(at: temporary)
            throw error
        }

        if existing == .directory {
            let old = parent.appendingPathComponent("\(name).old-\(randomSuffix())")
            do {
                try rename(url, to: old)
            } catch {
                try? fm.removeItem(at: temporary)
                throw error
            }
            do {
                try rename(temporary, to: url)
            } catch {
                try? rename(old, to: url)  // put the previous version back
                try? fm.removeItem(at: temporary)
                throw error
            }
            try syncDirectory(parent)
            try fm.removeItem(at: old)
        } else {
            do {
                try rename(temporary, to: url)
            } catch {
                try? fm.removeItem(at: temporary)
                throw error
            }
            try syncDirectory(parent)
        }
        return result
    }

    /// `fsync`s a directory, making renames and creations inside it durable.
    public static func syncDirectory(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError("open directory", url.path) }
        defer { close(fd) }
        // NOTE: some file systems (and some container overlays) refuse fsync on directories with
        // EINVAL; the rename is still atomic there, only its durability is the file system's.
        if fsync(fd) != 0 && errno != EINVAL { throw FileSystemError("fsync", url.path) }
    }

    /// A random suffix for temporary names (16 hex digits).
    static func randomSuffix() -> String {
        let v = UInt64.random(in: .min ... .max)
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    private static func rename(_ from: URL, to: URL) throws {
        guard systemRename(from.path, to.path) == 0 else {
            throw FileSystemError("rename", "\(from.path) → \(to.path)")
        }
    }

    private enum ItemKind { case none, directory, other }

    private static func kindOfItem(at url: URL) throws -> ItemKind {
        var info = stat()
        if lstat(url.path, &info) != 0 {
            if errno == ENOENT { return .none }
            throw FileSystemError("stat", url.path)
        }
        return (info.st_mode & S_IFMT) == S_IFDIR ? .directory : .other
    }

    private static func isEmptyDirectory(_ url: URL) throws -> Bool {
        try FileManager.default.contentsOfDirectory(atPath: url.path).isEmpty
    }
}
