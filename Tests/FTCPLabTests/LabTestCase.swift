import Foundation
import XCTest

/// A test on the namespace lab: skipped without root or `ip`, the lab brought up before each
/// test and always torn down after it, also when the test fails.
class LabTestCase: XCTestCase {
    var lab: Lab?

    override func setUpWithError() throws {
        try Lab.skipUnlessRunnable()
        let lab: Lab
        do {
            lab = try Lab(testName: name)
        } catch {
            XCTFail("\(error)")
            throw error
        }
        self.lab = lab
        try lab.up()
    }

    override func tearDown() {
        lab?.tearDown()
        lab = nil
        super.tearDown()
    }

    func requireLab() throws -> Lab {
        guard let lab else { throw LabError("lab not set up") }
        return lab
    }
}
