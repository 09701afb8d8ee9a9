import Foundation
import HerdTraining
import XCTest

final class AtomicFileTests: XCTestCase {
    struct Boom: Error {}

    func testWriteCreatesAndReplacesWithoutLeftovers() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("f.txt")
        let d1 = try AtomicFile.write(Data("first".utf8), to: url)
        XCTAssertEqual(d1, FileDigest(of: Data("first".utf8)))
        try AtomicFile.write(Data("second".utf8), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data("second".utf8))
        XCTAssertEqual(try tmp.contents(), ["f.txt"])
    }

    func testFailedWriteKeepsOldContents() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("f.txt")
        try AtomicFile.write(Data("old".utf8), to: url)
        XCTAssertNotNil(assertThrows(Boom.self) {
            try AtomicFile.write(to: url) { w in
                try w.write(Data("partial".utf8))
                throw Boom()
            }
        })
        XCTAssertEqual(try Data(contentsOf: url), Data("old".utf8))
        XCTAssertEqual(try tmp.contents(), ["f.txt"])
    }

    func testWriteDirectoryCreatesReplacesAndCleansUp() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("out")
        try AtomicFile.writeDirectory(at: url) { dir in
            XCTAssertTrue(dir.lastPathComponent.hasPrefix("out.tmp-"))
            let w = try FileWriter(creatingNew: dir.appendingPathComponent("a"))
            try w.write(Data("1".utf8))
            _ = try w.finish()
        }
        XCTAssertEqual(try tmp.contents("out"), ["a"])

        // Replacing: refused unless allowed, then done.
        let err = assertThrows(ArtifactError.self) {
            try AtomicFile.writeDirectory(at: url) { _ in }
        }
        XCTAssertEqual(err?.kind, .destinationExists)
        try AtomicFile.writeDirectory(at: url, mayReplace: { _ in true }) { dir in
            try AtomicFile.write(Data("2".utf8), to: dir.appendingPathComponent("b"))
        }
        XCTAssertEqual(try tmp.contents("out"), ["b"])
        XCTAssertEqual(try tmp.contents(), ["out"])
    }

    func testFailedDirectoryWriteChangesNothing() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("out")
        XCTAssertNotNil(assertThrows(Boom.self) {
            try AtomicFile.writeDirectory(at: url) { dir in
                try AtomicFile.write(Data("x".utf8), to: dir.appendingPathComponent("a"))
                throw Boom()
            }
        })
        XCTAssertEqual(try tmp.contents(), [])
    }

    func testEmptyExistingDirectoryIsReplaced() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        try AtomicFile.writeDirectory(at: url) { dir in
            try AtomicFile.write(Data("x".utf8), to: dir.appendingPathComponent("a"))
        }
        XCTAssertEqual(try tmp.contents("out"), ["a"])
    }
}
