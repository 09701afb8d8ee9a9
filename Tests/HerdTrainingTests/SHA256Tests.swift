import Foundation
import HerdTraining
import XCTest

final class SHA256Tests: XCTestCase {
    func hex(_ s: String) -> String {
        var h = SHA256()
        h.update(s)
        return h.finalizeHex()
    }

    func testFIPSVectors() {
        XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    func testOneMillionA() {
        let a = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(SHA256.hex(of: Data(a)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // The same fed in awkward pieces.
        var h = SHA256()
        var i = 0, piece = 1
        while i < a.count {
            let n = min(piece, a.count - i)
            a[i..<(i + n)].withUnsafeBytes { h.update($0) }
            i += n
            piece = piece * 3 % 997 + 1
        }
        XCTAssertEqual(h.byteCount, 1_000_000)
        XCTAssertEqual(h.finalizeHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testStreamingMatchesOneShotAroundBlockBoundaries() {
        var rng = SystemRandomNumberGenerator()
        for n in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000] {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            let whole = SHA256.hex(of: Data(bytes))
            for split in Set([0, n / 3, n / 2, max(0, n - 1), n]) {
                var h = SHA256()
                h.update(Array(bytes[..<split]))
                h.update(Array(bytes[split...]))
                XCTAssertEqual(h.finalizeHex(), whole, "n=\(n) split=\(split)")
            }
        }
    }

    func testFinalizeDoesNotConsume() {
        var h = SHA256()
        h.update("ab")
        _ = h.finalize()
        h.update("c")
        XCTAssertEqual(h.finalizeHex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testFileHashMatchesSystemSha256sum() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("blob")
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<100_003).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
        try Data(bytes).write(to: url)
        let ours = try SHA256.hex(ofFileAt: url)
        XCTAssertEqual(ours, SHA256.hex(of: Data(bytes)))
        let tool = "/usr/bin/sha256sum"
        guard FileManager.default.isExecutableFile(atPath: tool) else { throw XCTSkip("no \(tool)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = [url.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(String(decoding: out, as: UTF8.self).split(separator: " ").first.map(String.init), ours)
    }

    /// Throughput; runs only with `HERD_BENCH=1` (meaningful in release:
    /// `HERD_BENCH=1 swift test -c release --filter SHA256Tests/testThroughput`).
    func testThroughput() throws {
        guard ProcessInfo.processInfo.environment["HERD_BENCH"] == "1" else { throw XCTSkip("set HERD_BENCH=1") }
        let size = 256 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        for i in 0..<size { buffer[i] = UInt8(truncatingIfNeeded: i &* 31) }
        var best = Double.infinity
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = SHA256.hex(of: UnsafeRawBufferPointer(buffer))
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        print("SHA-256: \(String(format: "%.0f", Double(size) / best / 1e6)) MB/s (256 MiB, best of 3)")
    }
}
