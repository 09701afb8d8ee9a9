import Foundation
@testable import HerdTraining
import XCTest

final class WorkspaceTests: XCTestCase {
    func testVersionsIgnorePartialAndNonNumericDirectories() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("herd-ws-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = Workspace(path: dir)
        try w.create()
        XCTAssertNil(w.latestVersion(of: "wnd"))
        XCTAssertEqual(w.nextModelVersion(of: "wnd"), 1)
        XCTAssertThrowsError(try w.latestModel("wnd"))
        for (name, complete) in [("1", true), ("2", true), ("3", false), ("007", true), ("tmp", true)] {
            let d = w.model("wnd").appendingPathComponent(name)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            if complete { try Data("{}".utf8).write(to: d.appendingPathComponent("manifest.json")) }
        }
        XCTAssertEqual(w.versions(of: "wnd"), [1, 2])
        XCTAssertEqual(try w.latestModel("wnd").lastPathComponent, "2")
        // The partial version 3 and "007" (= 7) are never overwritten.
        XCTAssertEqual(w.nextModelVersion(of: "wnd"), 8)
        XCTAssertEqual(w.table("user").lastPathComponent, "user.herdtable")
        XCTAssertThrowsError(try w.require(w.table("train"), writtenBy: "herd preprocess recsys2021")) { e in
            XCTAssertTrue("\(e)".contains("herd preprocess recsys2021"))
        }
    }
}
