#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file-system call, with the operation, the path and the OS error.
public struct FileSystemError: Error, CustomStringConvertible, Sendable {
    /// What was attempted, e.g. "rename" or "fsync".
    public let operation: String
    /// The path involved (for a rename, "from → to").
    public let path: String
    /// The `errno` value, or 0 when the failure is not an OS error.
    public let code: Int32
    /// Extra explanation when `code` is 0.
    public let detail: String

    /// An OS error; `code` defaults to the current `errno`.
    public init(_ operation: String, _ path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
        self.detail = String(cString: strerror(code))
    }

    /// A failure that is not an OS error.
    public init(_ operation: String, _ path: String, detail: String) {
        self.operation = operation
        self.path = path
        self.code = 0
        self.detail = detail
    }

    public var description: String {
        code != 0 ? "\(operation) \(path) failed: \(detail) (errno \(code))" : "\(operation) \(path) failed: \(detail)"
    }
}

// NOTE: `FileWriter.write` and `AtomicFile.rename` shadow the C functions of the same names;
// these forward to the C library whichever module provides it.
@inline(__always) func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, p, n)
    #else
    Darwin.write(fd, p, n)
    #endif
}

@inline(__always) func systemRename(_ from: String, _ to: String) -> Int32 {
    #if canImport(Glibc)
    Glibc.rename(from, to)
    #else
    Darwin.rename(from, to)
    #endif
}
